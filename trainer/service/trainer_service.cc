#include "trainer_service.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "billnet/trainer/training.h"

namespace billnet::trainer {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

v1::TrainingProgress ToProto(const Progress& p) {
  v1::TrainingProgress o;
  o.set_stage(p.stage);
  o.set_epoch(p.epoch);
  o.set_epochs(p.epochs);
  o.set_step(p.step);
  o.set_steps(p.steps);
  o.set_loss(p.loss);
  o.set_accuracy(p.accuracy);
  o.set_learning_rate(p.learning_rate);
  o.set_seconds_per_step(p.seconds_per_step);
  o.set_eta_seconds(p.eta_seconds);
  o.set_message(p.message);
  return o;
}

v1::EpochResult ToProto(const EpochMetrics& m) {
  v1::EpochResult o;
  o.set_stage(m.stage);
  o.set_epoch(m.epoch);
  o.set_learning_rate(m.learning_rate);
  o.set_train_loss(m.train_loss);
  o.set_train_accuracy(m.train_accuracy);
  o.set_test_loss(m.test_loss);
  o.set_test_top1(m.test_top1);
  o.set_test_top5(m.test_top5);
  o.set_seconds(m.seconds);
  o.set_steps(m.steps);
  return o;
}

std::string Resolve(const std::string& workdir, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(workdir) / path).string();
}

constexpr size_t kMaxProgressEvents = 20000;

}  // namespace

TrainerServiceImpl::TrainerServiceImpl(std::string workdir, std::string repo)
    : workdir_(std::move(workdir)), repo_(Resolve(workdir_, repo)) {
  worker_ = std::thread([this] { Worker(); });
}

TrainerServiceImpl::~TrainerServiceImpl() {
  Shutdown();
  if (worker_.joinable()) worker_.join();
}

void TrainerServiceImpl::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  for (auto& [id, r] : jobs_) r->cancel = true;
  changed_.notify_all();
}

bool TrainerServiceImpl::Finished(const JobRecord& r) const {
  const v1::JobState s = r.job.state();
  return s == v1::JOB_SUCCEEDED || s == v1::JOB_FAILED || s == v1::JOB_CANCELLED;
}

grpc::Status TrainerServiceImpl::StartJob(grpc::ServerContext*, const v1::StartJobRequest* req,
                                          v1::Job* out) {
  json overrides;
  try {
    overrides = req->config_json().empty() ? json::object() : json::parse(req->config_json());
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        std::string("config_json: ") + e.what());
  }
  if (!overrides.is_object())
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "config_json must be an object");
  json merged = ToJson(TrainConfig::Default());
  merged.merge_patch(overrides);
  TrainConfig config;
  if (Status s = FromJson(merged, &config); !s.ok())
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, s.message());
  auto r = std::make_shared<JobRecord>();
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the service is stopping");
  const std::string id = "job-" + std::to_string(next_id_++);
  config.repo = Resolve(workdir_, overrides.contains("repo") ? config.repo : repo_);
  config.checkpoint_dir = overrides.contains("checkpoint_dir")
                              ? Resolve(workdir_, config.checkpoint_dir)
                              : (fs::path(workdir_) / "jobs" / id).string();
  r->config_json = ToJson(config).dump();
  r->job.set_id(id);
  r->job.set_state(v1::JOB_QUEUED);
  r->job.set_config_json(r->config_json);
  r->job.set_created_unix_ms(NowMs());
  r->job.set_model_dir((fs::path(config.repo) / config.name / config.version).string());
  jobs_[id] = r;
  queue_.push_back(r);
  changed_.notify_all();
  *out = r->job;
  return grpc::Status::OK;
}

void TrainerServiceImpl::Worker() {
  for (;;) {
    std::shared_ptr<JobRecord> r;
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) {
        for (auto& q : queue_) {
          q->job.set_state(v1::JOB_CANCELLED);
          q->job.set_error("the service stopped before the job ran");
          q->job.set_finished_unix_ms(NowMs());
        }
        queue_.clear();
        changed_.notify_all();
        return;
      }
      r = queue_.front();
      queue_.pop_front();
      if (r->cancel) continue;  // already marked cancelled by CancelJob
      r->job.set_state(v1::JOB_RUNNING);
      changed_.notify_all();
    }
    TrainConfig config;
    Status s = FromJson(json::parse(r->config_json), &config);
    TrainCallbacks cb;
    cb.cancel = &r->cancel;
    cb.on_progress = [&](const Progress& p) {
      std::lock_guard<std::mutex> lock(mu_);
      v1::JobEvent e;
      *e.mutable_progress() = ToProto(p);
      *r->job.mutable_last_progress() = e.progress();
      if (r->events.size() < kMaxProgressEvents || !p.message.empty()) r->events.push_back(e);
      changed_.notify_all();
    };
    cb.on_epoch = [&](const EpochMetrics& m) {
      std::lock_guard<std::mutex> lock(mu_);
      v1::JobEvent e;
      *e.mutable_epoch() = ToProto(m);
      *r->job.add_epochs() = e.epoch();
      r->events.push_back(e);
      changed_.notify_all();
    };
    if (s.ok()) s = Train(config, cb);
    std::lock_guard<std::mutex> lock(mu_);
    r->job.set_finished_unix_ms(NowMs());
    if (s.ok()) {
      r->job.set_state(v1::JOB_SUCCEEDED);
    } else if (s.code() == StatusCode::kCancelled) {
      r->job.set_state(v1::JOB_CANCELLED);
      r->job.set_error(s.message());
    } else {
      r->job.set_state(v1::JOB_FAILED);
      r->job.set_error(s.ToString());
    }
    changed_.notify_all();
  }
}

grpc::Status TrainerServiceImpl::WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                                          grpc::ServerWriter<v1::JobEvent>* writer) {
  std::shared_ptr<JobRecord> r;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(req->id());
    if (it == jobs_.end())
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no job '" + req->id() + "'");
    r = it->second;
  }
  size_t sent = 0;
  for (;;) {
    std::vector<v1::JobEvent> batch;
    bool done = false;
    v1::Job final_job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait_for(lock, std::chrono::milliseconds(500),
                        [&] { return r->events.size() > sent || Finished(*r) || stopping_; });
      batch.assign(r->events.begin() + sent, r->events.end());
      sent = r->events.size();
      done = Finished(*r);
      if (done) final_job = r->job;
      if (stopping_ && !done)
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the service is stopping");
    }
    if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
    for (const v1::JobEvent& e : batch)
      if (!writer->Write(e)) return grpc::Status::CANCELLED;  // the client went away
    if (done) {
      v1::JobEvent e;
      *e.mutable_finished() = final_job;
      writer->Write(e);
      return grpc::Status::OK;
    }
  }
}

grpc::Status TrainerServiceImpl::GetJob(grpc::ServerContext*, const v1::GetJobRequest* req,
                                        v1::Job* out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(req->id());
  if (it == jobs_.end())
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no job '" + req->id() + "'");
  *out = it->second->job;
  return grpc::Status::OK;
}

grpc::Status TrainerServiceImpl::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*,
                                          v1::ListJobsResponse* out) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, r] : jobs_) *out->add_jobs() = r->job;
  return grpc::Status::OK;
}

grpc::Status TrainerServiceImpl::CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* req,
                                           v1::Job* out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(req->id());
  if (it == jobs_.end())
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no job '" + req->id() + "'");
  JobRecord& r = *it->second;
  if (Finished(r))
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "job '" + req->id() + "' has already finished");
  r.cancel = true;
  if (r.job.state() == v1::JOB_QUEUED) {
    r.job.set_state(v1::JOB_CANCELLED);
    r.job.set_error("cancelled before it ran");
    r.job.set_finished_unix_ms(NowMs());
  }
  changed_.notify_all();
  *out = r.job;
  return grpc::Status::OK;
}

grpc::Status TrainerServiceImpl::ListExportedModels(grpc::ServerContext*,
                                                    const v1::ListExportedModelsRequest* req,
                                                    v1::ListExportedModelsResponse* out) {
  const std::string repo = req->repo().empty() ? repo_ : Resolve(workdir_, req->repo());
  std::error_code ec;
  if (!fs::is_directory(repo, ec))
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no model repository '" + repo + "'");
  std::vector<fs::path> names;
  for (const auto& n : fs::directory_iterator(repo, ec))
    if (n.is_directory()) names.push_back(n.path());
  std::sort(names.begin(), names.end());
  for (const fs::path& n : names) {
    std::vector<fs::path> versions;
    for (const auto& v : fs::directory_iterator(n, ec))
      if (v.is_directory()) versions.push_back(v.path());
    std::sort(versions.begin(), versions.end());
    for (const fs::path& v : versions) {
      v1::ExportedModel m;
      m.set_name(n.filename().string());
      m.set_version(v.filename().string());
      m.set_path(v.string());
      for (int s = 1; s <= 5; ++s)
        if (fs::exists(v / ("s" + std::to_string(s) + ".safetensors"))) m.add_stages(s);
      if (m.stages_size() == 0) continue;
      m.set_complete(m.stages_size() == 5);
      *out->add_models() = m;
    }
  }
  return grpc::Status::OK;
}

namespace {
std::atomic<bool> g_stop{false};
void OnStop(int) { g_stop = true; }
}  // namespace

int RunTrainerServer(const std::string& listen, const std::string& workdir,
                     const std::string& repo) {
  TrainerServiceImpl service(workdir, repo);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "billnet-trainer serve: cannot listen on '%s'\n", listen.c_str());
    return 1;
  }
  std::printf("billnet-trainer serve: listening on %s (port %d), working folder %s\n",
              listen.c_str(), port, workdir.c_str());
  std::fflush(stdout);
  std::signal(SIGINT, OnStop);
  std::signal(SIGTERM, OnStop);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::printf("billnet-trainer serve: stopping (the running job keeps its last checkpoint)\n");
  service.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return 0;
}

}  // namespace billnet::trainer
