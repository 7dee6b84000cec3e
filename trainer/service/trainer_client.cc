#include "trainer_client.h"

#include <absl/status/status.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>

#include "billnet/v1/trainer_service.grpc.pb.h"

namespace billnet::trainer {

namespace {

constexpr int kExitOk = 0, kExitJobNotSucceeded = 1, kExitRefused = 2, kExitUnreachable = 3;

std::string StateName(v1::JobState s) {
  switch (s) {
    case v1::JOB_QUEUED: return "QUEUED";
    case v1::JOB_RUNNING: return "RUNNING";
    case v1::JOB_SUCCEEDED: return "SUCCEEDED";
    case v1::JOB_FAILED: return "FAILED";
    case v1::JOB_CANCELLED: return "CANCELLED";
    default: return "UNSPECIFIED";
  }
}

std::string Time(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  const std::time_t t = std::time_t(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Duration(double s) {
  if (!(s >= 0) || s > 1e8) return "?";
  const long t = long(s + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ldh%02ldm%02lds", t / 3600, (t % 3600) / 60, t % 60);
  return buf;
}

std::string ProgressLine(const v1::TrainingProgress& p) {
  if (!p.message().empty()) return p.message();
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "S%d epoch %d/%d step %lld/%lld loss %.4f acc %5.1f%% lr %.2g %.2f s/step ETA %s",
                p.stage(), p.epoch() + 1, p.epochs(), (long long)p.step(), (long long)p.steps(),
                p.loss(), 100 * p.accuracy(), p.learning_rate(), p.seconds_per_step(),
                Duration(p.eta_seconds()).c_str());
  return buf;
}

std::string EpochLine(const v1::EpochResult& e) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "S%d epoch %d: train loss %.4f acc %.2f%% | test loss %.4f top-1 %.2f%% top-5 "
                "%.2f%% (%s, %lld steps)",
                e.stage(), e.epoch() + 1, e.train_loss(), 100 * e.train_accuracy(), e.test_loss(),
                100 * e.test_top1(), 100 * e.test_top5(), Duration(e.seconds()).c_str(),
                (long long)e.steps());
  return buf;
}

void PrintJob(const v1::Job& j, std::ostream& out) {
  out << j.id() << "  " << StateName(j.state()) << "  " << j.model_dir() << "  created "
      << Time(j.created_unix_ms());
  if (j.finished_unix_ms() > 0) out << "  finished " << Time(j.finished_unix_ms());
  out << "\n";
  if (!j.error().empty()) out << "  error: " << j.error() << "\n";
  if (j.state() == v1::JOB_RUNNING && j.has_last_progress())
    out << "  " << ProgressLine(j.last_progress()) << "\n";
  if (j.epochs_size() > 0) out << "  last epoch: " << EpochLine(j.epochs(j.epochs_size() - 1)) << "\n";
}

void PrintJson(const google::protobuf::Message& m, std::ostream& out) {
  std::string s;
  google::protobuf::util::JsonPrintOptions po;
  po.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &s, po);
  out << s << "\n";
  out.flush();
}

class Client {
 public:
  Client(const JobClientOptions& o, std::ostream& err) : o_(o), err_(err) {
    channel_ = grpc::CreateChannel(o.server, grpc::InsecureChannelCredentials());
    stub_ = v1::TrainerService::NewStub(channel_);
  }

  // False (with the message) when nothing answers at the address in time.
  bool Connect() {
    const auto deadline = std::chrono::system_clock::now() +
                          std::chrono::milliseconds(int64_t(o_.connect_timeout_s * 1000));
    if (channel_->WaitForConnected(deadline)) return true;
    err_ << "billnet-trainer job: no trainer service at " << o_.server << " within "
         << o_.connect_timeout_s << " s (start one with `billnet-trainer serve`)\n";
    return false;
  }

  // The exit code of a failed call, after saying why. gRPC's codes are
  // absl's canonical codes, so absl names them.
  int Failed(const std::string& what, const grpc::Status& s) {
    err_ << "billnet-trainer job: " << what << " at " << o_.server << ": " << s.error_message()
         << " (" << absl::StatusCodeToString(absl::StatusCode(int(s.error_code()))) << ")\n";
    return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                   s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
               ? kExitUnreachable
               : kExitRefused;
  }

  v1::TrainerService::Stub& stub() { return *stub_; }

 private:
  const JobClientOptions& o_;
  std::ostream& err_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TrainerService::Stub> stub_;
};

int Watch(Client& c, const JobClientOptions& o, const std::string& id, std::ostream& out) {
  grpc::ClientContext ctx;
  v1::WatchJobRequest req;
  req.set_id(id);
  auto reader = c.stub().WatchJob(&ctx, req);
  v1::JobEvent e;
  v1::Job finished;
  bool ended = false;
  while (reader->Read(&e)) {
    if (o.json) {
      PrintJson(e, out);
    } else if (e.has_progress()) {
      // The trainer's own lines; they include each epoch's summary, so the
      // epoch events (kept for `get` and --json) are not printed again.
      out << id << ": " << ProgressLine(e.progress()) << "\n";
    }
    if (e.has_finished()) {
      finished = e.finished();
      ended = true;
    }
    out.flush();
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) return c.Failed("watching " + id, s);
  if (!ended) return c.Failed("watching " + id,
                              grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                           "the stream ended before the job did"));
  if (!o.json) PrintJob(finished, out);
  return finished.state() == v1::JOB_SUCCEEDED ? kExitOk : kExitJobNotSucceeded;
}

using Stub = v1::TrainerService::Stub;

// Connects, makes one call and prints its reply: as JSON, or with `text`.
template <typename Reply, typename Call, typename Text>
int Unary(const JobClientOptions& o, std::ostream& err, std::ostream& out,
          const std::string& what, Call call, Text text) {
  Client c(o, err);
  if (!c.Connect()) return kExitUnreachable;
  grpc::ClientContext ctx;
  Reply reply;
  grpc::Status s = call(c.stub(), &ctx, &reply);
  if (!s.ok()) return c.Failed(what, s);
  if (o.json) {
    PrintJson(reply, out);
  } else {
    text(reply);
  }
  return kExitOk;
}

}  // namespace

int JobStart(const JobClientOptions& o, const std::string& config_json, bool watch,
             std::ostream& out, std::ostream& err) {
  Client c(o, err);
  if (!c.Connect()) return kExitUnreachable;
  grpc::ClientContext ctx;
  v1::StartJobRequest req;
  req.set_config_json(config_json);
  v1::Job job;
  grpc::Status s = c.stub().StartJob(&ctx, req, &job);
  if (!s.ok()) return c.Failed("starting a job", s);
  if (o.json) {
    PrintJson(job, out);
  } else {
    out << "started ";
    PrintJob(job, out);
  }
  return watch ? Watch(c, o, job.id(), out) : kExitOk;
}

int JobWatch(const JobClientOptions& o, const std::string& id, std::ostream& out,
             std::ostream& err) {
  Client c(o, err);
  if (!c.Connect()) return kExitUnreachable;
  return Watch(c, o, id, out);
}

int JobGet(const JobClientOptions& o, const std::string& id, std::ostream& out,
           std::ostream& err) {
  v1::GetJobRequest req;
  req.set_id(id);
  return Unary<v1::Job>(
      o, err, out, "getting " + id,
      [&](Stub& s, grpc::ClientContext* c, v1::Job* r) { return s.GetJob(c, req, r); },
      [&](const v1::Job& job) {
        PrintJob(job, out);
        for (const v1::EpochResult& e : job.epochs()) out << "  " << EpochLine(e) << "\n";
      });
}

int JobList(const JobClientOptions& o, std::ostream& out, std::ostream& err) {
  return Unary<v1::ListJobsResponse>(
      o, err, out, "listing jobs",
      [](Stub& s, grpc::ClientContext* c, v1::ListJobsResponse* r) {
        return s.ListJobs(c, v1::ListJobsRequest(), r);
      },
      [&](const v1::ListJobsResponse& r) {
        if (r.jobs_size() == 0) out << "no jobs\n";
        for (const v1::Job& j : r.jobs()) PrintJob(j, out);
      });
}

int JobCancel(const JobClientOptions& o, const std::string& id, std::ostream& out,
              std::ostream& err) {
  v1::CancelJobRequest req;
  req.set_id(id);
  return Unary<v1::Job>(
      o, err, out, "cancelling " + id,
      [&](Stub& s, grpc::ClientContext* c, v1::Job* r) { return s.CancelJob(c, req, r); },
      [&](const v1::Job& job) {
        out << "cancel requested: ";
        PrintJob(job, out);
      });
}

int JobModels(const JobClientOptions& o, const std::string& repo, std::ostream& out,
              std::ostream& err) {
  v1::ListExportedModelsRequest req;
  req.set_repo(repo);
  return Unary<v1::ListExportedModelsResponse>(
      o, err, out, "listing models",
      [&](Stub& s, grpc::ClientContext* c, v1::ListExportedModelsResponse* r) {
        return s.ListExportedModels(c, req, r);
      },
      [&](const v1::ListExportedModelsResponse& r) {
        if (r.models_size() == 0) out << "no models\n";
        for (const v1::ExportedModel& m : r.models()) {
          out << m.name() << "/" << m.version() << "  stages";
          for (int st : m.stages()) out << " s" << st;
          out << (m.complete() ? "  complete  " : "  incomplete  ") << m.path() << "\n";
        }
      });
}

}  // namespace billnet::trainer
