// The model repository (DESIGN.md sections 2.4 and 3):
//   <root>/<name>/<version>/s1.safetensors ... s5.safetensors
// A version is a positive integer; it is complete when s1..s5 all exist. Every
// file is validated by the engine (Model::LoadFile) before it is served; a bad
// file is an error and never replaces a working model.
//
// Each model name has one active model (a version and stage): what unpinned
// streams use. By default it follows the highest complete version at the
// default stage (S5); repository polling picks up new versions. Activate()
// switches it (hot swap) and either pins a version or returns to following
// the latest. Handles are shared_ptrs: a window running on a model keeps it
// alive across swaps and unloads.
//
// Thread-safety: every method may be called from any thread.
#ifndef BILLNET_SERVER_CORE_REPOSITORY_H_
#define BILLNET_SERVER_CORE_REPOSITORY_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "billnet/cost.h"
#include "billnet/model.h"
#include "billnet/status.h"

namespace billnet::server {

class Metrics;
struct ModelSeries;

struct ModelKey {
  std::string name;
  uint32_t version = 0;
  Stage stage = Stage::kS5;
  std::string ToString() const;  // "billnet2x/3/s5"
  bool operator==(const ModelKey&) const = default;
  bool operator<(const ModelKey& o) const {
    return std::tie(name, version, stage) < std::tie(o.name, o.version, o.stage);
  }
};

// A validated model of the repository; immutable.
struct LoadedModel {
  ModelKey key;
  std::string path;
  std::shared_ptr<const Model> model;
  CostReport cost;
  ModelSeries* series = nullptr;  // its metrics
};
using ModelHandle = std::shared_ptr<const LoadedModel>;

struct RepositoryOptions {
  std::string root = "models";
  // Served when a call names no model; empty: the first name (sorted) with an
  // active model.
  std::string default_model;
  Stage default_stage = Stage::kS5;
  // Rescans the directory this often (0: never; Rescan() by hand).
  std::chrono::milliseconds poll_interval{0};
};

struct VersionListing {
  uint32_t version = 0;
  std::vector<Stage> stages;  // files present
  bool complete = false;
};

struct ModelListing {
  std::string name;
  std::vector<VersionListing> versions;  // ascending
  ModelHandle active;                    // may be null
  bool follows_latest = true;
  std::vector<ModelKey> loaded;
};

class ModelRepository {
 public:
  ModelRepository(RepositoryOptions options, Metrics* metrics);
  ~ModelRepository();  // stops polling
  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  // Scans the root and activates, for every name, its highest complete
  // version that loads (default stage). NotFound if the root does not exist,
  // or if no model can be served.
  Status Init();

  // Loads and validates a model (cached). version 0: the highest complete
  // version; no stage: the default stage. NotFound for a model, version or
  // file that does not exist; the engine's error for a bad file.
  StatusOr<ModelHandle> Load(const std::string& name, uint32_t version, std::optional<Stage> stage);

  // Hot swap: loads (validates) and makes it the active model of its name.
  // version 0 follows the highest complete version from now on; no stage
  // keeps the current active stage. On error nothing changes. Returns the
  // previous active model (may be null) and the new one.
  StatusOr<std::pair<ModelHandle, ModelHandle>> Activate(const std::string& name, uint32_t version,
                                                         std::optional<Stage> stage);

  // Forgets a loaded model (FailedPrecondition-like InvalidArgument for the
  // active one; NotFound if it is not loaded). Users of its handle keep it.
  Status Unload(const ModelKey& key);

  // The model a call asks for: empty name = the default model. Without
  // version and stage: the active model. With either: that model (pinned),
  // the missing part taken from the active one; loaded on demand.
  StatusOr<ModelHandle> Resolve(const std::string& name, uint32_t version,
                                std::optional<Stage> stage);

  // The active model of `name` (null if none).
  ModelHandle Active(const std::string& name) const;
  // Changes whenever any name's active model changes (cheap to poll).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::string default_model() const;
  const std::string& root() const { return options_.root; }

  std::vector<ModelListing> List() const;

  // One polling pass: new complete versions of names that follow the latest
  // (and new names) are loaded and activated. The series of every file seen
  // are created first; a file seen for the first time is loaded by the next
  // pass, so its counters are exported at 0 before a failed load counts 1
  // (Prometheus's increase() then sees the failure). A file that fails is not
  // tried again until it changes (size or time).
  void Rescan();
  void StartPolling();
  void StopPolling();

 private:
  struct ActiveEntry {
    ModelHandle handle;
    bool follow_latest = true;
    Stage stage = Stage::kS5;
  };
  using Listing = std::map<std::string, std::map<uint32_t, std::vector<Stage>>>;

  Listing Scan() const;
  StatusOr<ModelHandle> LoadKey(const ModelKey& key);
  std::string PathOf(const ModelKey& key) const;
  static std::optional<uint32_t> LatestComplete(const std::map<uint32_t, std::vector<Stage>>& v);
  void SetActiveLocked(const std::string& name, ModelHandle handle, bool follow, Stage stage);

  RepositoryOptions options_;
  Metrics* metrics_;
  std::mutex load_mu_;  // serializes file loads
  mutable std::mutex mu_;
  std::map<ModelKey, ModelHandle> loaded_;
  std::map<std::string, ActiveEntry> active_;
  std::map<std::string, std::pair<int64_t, int64_t>> failed_files_;  // path -> (size, mtime)
  std::set<ModelKey> seen_;  // files listed by Init or a Rescan
  std::atomic<uint64_t> generation_{0};

  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool poll_stop_ = false;
  std::thread poll_thread_;
};

// True for names that may be a repository folder: [A-Za-z0-9._-]+, not "." or "..".
bool IsValidModelName(const std::string& name);

}  // namespace billnet::server

#endif  // BILLNET_SERVER_CORE_REPOSITORY_H_
