// The trainer's gRPC service (proto/billnet/v1/trainer_service.proto): jobs
// that run Train() in this process, one at a time in submission order,
// independent of the RPCs that started or watch them.
//
// Thread-safety: every method may be called from any gRPC thread.
#ifndef BILLNET_TRAINER_SERVICE_TRAINER_SERVICE_H_
#define BILLNET_TRAINER_SERVICE_TRAINER_SERVICE_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "billnet/v1/trainer_service.grpc.pb.h"

namespace billnet::trainer {

class TrainerServiceImpl final : public v1::TrainerService::Service {
 public:
  // `workdir`: relative repo / checkpoint paths of job configs resolve here;
  // jobs without a checkpoint_dir get workdir/jobs/<id>. `repo`: the model
  // repository ListExportedModels lists by default.
  TrainerServiceImpl(std::string workdir, std::string repo);
  // Cancels the running job and waits for it to stop.
  ~TrainerServiceImpl() override;

  grpc::Status StartJob(grpc::ServerContext*, const v1::StartJobRequest*, v1::Job*) override;
  grpc::Status WatchJob(grpc::ServerContext*, const v1::WatchJobRequest*,
                        grpc::ServerWriter<v1::JobEvent>*) override;
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest*, v1::Job*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*,
                        v1::ListJobsResponse*) override;
  grpc::Status CancelJob(grpc::ServerContext*, const v1::CancelJobRequest*, v1::Job*) override;
  grpc::Status ListExportedModels(grpc::ServerContext*, const v1::ListExportedModelsRequest*,
                                  v1::ListExportedModelsResponse*) override;

  // Stops taking jobs, cancels the running one and the queue (for shutdown).
  void Shutdown();

 private:
  struct JobRecord {
    v1::Job job;
    std::string config_json;  // effective TrainConfig
    std::vector<v1::JobEvent> events;
    std::atomic<bool> cancel{false};
  };

  void Worker();
  bool Finished(const JobRecord& r) const;

  std::string workdir_, repo_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, std::shared_ptr<JobRecord>> jobs_;
  std::deque<std::shared_ptr<JobRecord>> queue_;
  int64_t next_id_ = 1;
  bool stopping_ = false;
  std::thread worker_;
};

// Serves the trainer service on `listen` until SIGINT/SIGTERM; returns the
// process exit code.
int RunTrainerServer(const std::string& listen, const std::string& workdir,
                     const std::string& repo);

}  // namespace billnet::trainer

#endif  // BILLNET_TRAINER_SERVICE_TRAINER_SERVICE_H_
