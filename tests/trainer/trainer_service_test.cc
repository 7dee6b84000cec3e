// The trainer's gRPC service on loopback: a tiny job from start to exported
// file, watched as a stream; cancel; bad configs; jobs outlive their clients.
#include "trainer_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "billnet/model.h"
#include "trainer_client.h"
#include "test_util.h"

namespace billnet::trainer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class TrainerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("billnet_trainer_service_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    service_ = std::make_unique<TrainerServiceImpl>(dir_.string(), "models");
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_TRUE(server_);
    ASSERT_GT(port, 0);
    client_.server = "127.0.0.1:" + std::to_string(port);
    stub_ = v1::TrainerService::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                            grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    service_->Shutdown();
    server_->Shutdown();
    server_.reset();
    service_.reset();
    fs::remove_all(dir_);
  }

  // A tiny S1-only job.
  static json TinyJob(int epochs) {
    const TopologyConfig t = testing::TinyTopology();
    json stages = json::array();
    for (int s = 0; s < 5; ++s)
      stages.push_back(
          {{"learning_rate", 3e-3}, {"epochs", epochs}, {"decay_epochs", 0}, {"run_epochs", 0}});
    json data = {{"seed", 3}, {"clips_per_class", 1}, {"labels", {0, 1}}, {"streams", 0}};
    return {{"name", "tiny"},
            {"topology",
             {{"base_channels", t.base_channels},
              {"groups", t.groups},
              {"lstm_units", t.lstm_units},
              {"classes", 27},
              {"tail_mor_blocks", t.tail_mor_blocks},
              {"frames", t.frames},
              {"height", 48},
              {"width", 64}}},
            {"train", data},
            {"test", data},
            {"calibration", data},
            {"batch_size", 2},
            {"threads", 1},
            {"last_stage", 1},
            {"write_curves", false},
            {"stages", stages}};
  }

  v1::Job Start(const json& config, grpc::Status* status = nullptr) {
    grpc::ClientContext ctx;
    v1::StartJobRequest req;
    req.set_config_json(config.dump());
    v1::Job job;
    grpc::Status s = stub_->StartJob(&ctx, req, &job);
    if (status) *status = s;
    return job;
  }

  // Watches a job to its end; returns the events.
  std::vector<v1::JobEvent> Watch(const std::string& id, grpc::Status* status) {
    grpc::ClientContext ctx;
    v1::WatchJobRequest req;
    req.set_id(id);
    auto reader = stub_->WatchJob(&ctx, req);
    std::vector<v1::JobEvent> events;
    v1::JobEvent e;
    while (reader->Read(&e)) events.push_back(e);
    *status = reader->Finish();
    return events;
  }

  fs::path dir_;
  JobClientOptions client_;  // the command-line client's options for this service
  std::unique_ptr<TrainerServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::TrainerService::Stub> stub_;
};

TEST_F(TrainerServiceTest, AJobTrainsExportsAndIsWatchedToItsEnd) {
  grpc::Status s;
  v1::Job job = Start(TinyJob(2), &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(job.id(), "job-1");
  std::vector<v1::JobEvent> events = Watch(job.id(), &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(events.empty());
  int epochs = 0;
  for (const v1::JobEvent& e : events) epochs += e.has_epoch();
  EXPECT_EQ(epochs, 2);
  ASSERT_TRUE(events.back().has_finished());
  const v1::Job& done = events.back().finished();
  EXPECT_EQ(done.state(), v1::JOB_SUCCEEDED) << done.error();
  EXPECT_EQ(done.epochs_size(), 2);
  // The file is in the service's repository and loads.
  const fs::path file = dir_ / "models" / "tiny" / "1" / "s1.safetensors";
  EXPECT_EQ(done.model_dir(), (dir_ / "models" / "tiny" / "1").string());
  auto m = Model::LoadFile(file.string());
  ASSERT_TRUE(m.ok()) << m.status().ToString();

  grpc::ClientContext ctx;
  v1::ListExportedModelsResponse models;
  ASSERT_TRUE(stub_->ListExportedModels(&ctx, {}, &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).name(), "tiny");
  EXPECT_EQ(models.models(0).version(), "1");
  EXPECT_EQ(std::vector<int>(models.models(0).stages().begin(), models.models(0).stages().end()),
            std::vector<int>{1});
  EXPECT_FALSE(models.models(0).complete());

  // Watching a finished job replays it.
  std::vector<v1::JobEvent> again = Watch(job.id(), &s);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(again.size(), events.size());
}

TEST_F(TrainerServiceTest, BadConfigsAndUnknownJobsAreClearErrors) {
  grpc::Status s;
  Start(json::parse(R"({"batch_size": 0})"), &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("batch_size"), std::string::npos) << s.error_message();
  grpc::ClientContext ctx;
  v1::StartJobRequest req;
  req.set_config_json("{not json");
  v1::Job job;
  EXPECT_EQ(stub_->StartJob(&ctx, req, &job).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  Watch("job-99", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext c2;
  v1::CancelJobRequest cr;
  cr.set_id("job-99");
  EXPECT_EQ(stub_->CancelJob(&c2, cr, &job).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(TrainerServiceTest, CancelStopsARunningJobAndAQueuedOne) {
  grpc::Status s;
  v1::Job running = Start(TinyJob(1000), &s);
  ASSERT_TRUE(s.ok());
  v1::Job queued = Start(TinyJob(1), &s);
  ASSERT_TRUE(s.ok());
  // Wait for the first epoch of the long job, reading its stream, then leave.
  {
    grpc::ClientContext ctx;
    v1::WatchJobRequest req;
    req.set_id(running.id());
    auto reader = stub_->WatchJob(&ctx, req);
    v1::JobEvent e;
    while (reader->Read(&e) && !e.has_epoch()) {
    }
    ASSERT_TRUE(e.has_epoch());
    ctx.TryCancel();  // a client that goes away does not stop the job
  }
  grpc::ClientContext g;
  v1::GetJobRequest gr;
  gr.set_id(running.id());
  v1::Job now;
  ASSERT_TRUE(stub_->GetJob(&g, gr, &now).ok());
  EXPECT_EQ(now.state(), v1::JOB_RUNNING);

  for (const v1::Job* j : {&queued, &running}) {
    grpc::ClientContext c;
    v1::CancelJobRequest cr;
    cr.set_id(j->id());
    v1::Job out;
    ASSERT_TRUE(stub_->CancelJob(&c, cr, &out).ok());
  }
  std::vector<v1::JobEvent> events = Watch(running.id(), &s);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(events.back().has_finished());
  EXPECT_EQ(events.back().finished().state(), v1::JOB_CANCELLED);
  EXPECT_LT(events.back().finished().epochs_size(), 1000);
  events = Watch(queued.id(), &s);
  EXPECT_EQ(events.back().finished().state(), v1::JOB_CANCELLED);
  EXPECT_EQ(events.back().finished().epochs_size(), 0);

  grpc::ClientContext l;
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(stub_->ListJobs(&l, {}, &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 2);
}

// `billnet-trainer job ...`: the command-line client's functions against the
// same service.
TEST_F(TrainerServiceTest, TheClientStartsWatchesListsAndGetsAJob) {
  std::ostringstream out, err;
  ASSERT_EQ(JobStart(client_, TinyJob(2).dump(), /*watch=*/true, out, err), 0) << err.str();
  const std::string watched = out.str();
  EXPECT_NE(watched.find("started job-1  QUEUED"), std::string::npos) << watched;
  EXPECT_NE(watched.find("job-1: S1 epoch 1/2 step 1/"), std::string::npos) << watched;
  EXPECT_NE(watched.find("job-1: S1 epoch 2/2: train loss"), std::string::npos) << watched;
  EXPECT_NE(watched.find("job-1  SUCCEEDED  " + (dir_ / "models" / "tiny" / "1").string()),
            std::string::npos)
      << watched;

  std::ostringstream list, get, models, as_json;
  EXPECT_EQ(JobList(client_, list, err), 0);
  EXPECT_NE(list.str().find("job-1  SUCCEEDED"), std::string::npos) << list.str();
  EXPECT_EQ(JobGet(client_, "job-1", get, err), 0);
  EXPECT_NE(get.str().find("S1 epoch 2: train loss"), std::string::npos) << get.str();
  EXPECT_EQ(JobModels(client_, "", models, err), 0);
  EXPECT_NE(models.str().find("tiny/1  stages s1  incomplete"), std::string::npos)
      << models.str();

  JobClientOptions j = client_;
  j.json = true;
  EXPECT_EQ(JobGet(j, "job-1", as_json, err), 0);
  const json got = json::parse(as_json.str());
  EXPECT_EQ(got["id"], "job-1");
  EXPECT_EQ(got["state"], "JOB_SUCCEEDED");
  EXPECT_EQ(got["epochs"].size(), 2u);
  EXPECT_TRUE(err.str().empty()) << err.str();
}

TEST_F(TrainerServiceTest, TheClientCancelsAndReportsAJobThatDidNotSucceed) {
  std::ostringstream out, err;
  ASSERT_EQ(JobStart(client_, TinyJob(1000).dump(), /*watch=*/false, out, err), 0) << err.str();
  EXPECT_EQ(JobCancel(client_, "job-1", out, err), 0) << err.str();
  EXPECT_NE(out.str().find("cancel requested: job-1"), std::string::npos) << out.str();
  std::ostringstream watched;
  EXPECT_EQ(JobWatch(client_, "job-1", watched, err), 1);
  EXPECT_NE(watched.str().find("job-1  CANCELLED"), std::string::npos) << watched.str();
}

TEST_F(TrainerServiceTest, TheClientNamesBadConfigsUnknownJobsAndAMissingService) {
  std::ostringstream out, err;
  EXPECT_EQ(JobStart(client_, R"({"batch_size": 0})", false, out, err), 2);
  EXPECT_NE(err.str().find("starting a job at " + client_.server), std::string::npos)
      << err.str();
  EXPECT_NE(err.str().find("batch_size"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("INVALID_ARGUMENT"), std::string::npos) << err.str();
  err.str("");
  EXPECT_EQ(JobStart(client_, "{not json", false, out, err), 2);
  EXPECT_NE(err.str().find("config_json"), std::string::npos) << err.str();
  err.str("");
  EXPECT_EQ(JobGet(client_, "job-99", out, err), 2);
  EXPECT_NE(err.str().find("getting job-99"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("NOT_FOUND"), std::string::npos) << err.str();
  err.str("");
  EXPECT_EQ(JobWatch(client_, "job-99", out, err), 2);
  EXPECT_EQ(JobCancel(client_, "job-99", out, err), 2);
  EXPECT_TRUE(out.str().empty()) << out.str();

  JobClientOptions nowhere;
  nowhere.server = "127.0.0.1:1";
  nowhere.connect_timeout_s = 0.3;
  err.str("");
  EXPECT_EQ(JobList(nowhere, out, err), 3);
  EXPECT_NE(err.str().find("no trainer service at 127.0.0.1:1"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace billnet::trainer
