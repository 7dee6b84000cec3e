// The command-line side of the trainer service (`billnet-trainer job ...`):
// each function makes one call (or a watch) on a TrainerService at `server`,
// prints the result to `out` (text, or one JSON object per message with
// `json`), and returns the process exit code:
//   0  done (for a watch: the job succeeded)
//   1  the watched job ended FAILED or CANCELLED
//   2  the service refused the request (bad config, unknown job: the message)
//   3  no service at `server` within the timeout
// Errors go to `err`, naming the server, the job and the service's message.
//
// Thread-safety: plain functions; each makes its own channel.
#ifndef BILLNET_TRAINER_SERVICE_TRAINER_CLIENT_H_
#define BILLNET_TRAINER_SERVICE_TRAINER_CLIENT_H_

#include <ostream>
#include <string>

namespace billnet::trainer {

struct JobClientOptions {
  std::string server = "127.0.0.1:50061";
  double connect_timeout_s = 10;  // waiting for the channel to connect
  bool json = false;
};

// Queues a job from a config (a JSON object merged over the defaults); with
// `watch`, follows it to its end like JobWatch.
int JobStart(const JobClientOptions& o, const std::string& config_json, bool watch,
             std::ostream& out, std::ostream& err);
// The job's events so far, then live ones, until it ends.
int JobWatch(const JobClientOptions& o, const std::string& id, std::ostream& out,
             std::ostream& err);
int JobGet(const JobClientOptions& o, const std::string& id, std::ostream& out,
           std::ostream& err);
int JobList(const JobClientOptions& o, std::ostream& out, std::ostream& err);
int JobCancel(const JobClientOptions& o, const std::string& id, std::ostream& out,
              std::ostream& err);
// The versions under the service's repository (or `repo`).
int JobModels(const JobClientOptions& o, const std::string& repo, std::ostream& out,
              std::ostream& err);

}  // namespace billnet::trainer

#endif  // BILLNET_TRAINER_SERVICE_TRAINER_CLIENT_H_
