#include "core/repository.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "core/metrics.h"

namespace billnet::server {

namespace fs = std::filesystem;

std::string ModelKey::ToString() const {
  return name + "/" + std::to_string(version) + "/" + StageName(stage);
}

bool IsValidModelName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}

namespace {

std::optional<uint32_t> ParseVersion(const std::string& s) {
  if (s.empty() || s.size() > 9 || s[0] == '0') return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + uint32_t(c - '0');
  }
  return v;
}

std::pair<int64_t, int64_t> FileStamp(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return {-1, -1};
  return {int64_t(st.st_size), int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

}  // namespace

ModelRepository::ModelRepository(RepositoryOptions options, Metrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {}

ModelRepository::~ModelRepository() { StopPolling(); }

std::string ModelRepository::PathOf(const ModelKey& key) const {
  return (fs::path(options_.root) / key.name / std::to_string(key.version) /
          (std::string(StageName(key.stage)) + ".safetensors"))
      .string();
}

ModelRepository::Listing ModelRepository::Scan() const {
  Listing out;
  std::error_code ec;
  for (const auto& m : fs::directory_iterator(options_.root, ec)) {
    const std::string name = m.path().filename().string();
    if (!IsValidModelName(name) || !m.is_directory(ec)) continue;
    for (const auto& v : fs::directory_iterator(m.path(), ec)) {
      const auto version = ParseVersion(v.path().filename().string());
      if (!version || !v.is_directory(ec)) continue;
      std::vector<Stage> stages;
      for (int s = 1; s <= 5; ++s) {
        const fs::path f = v.path() / (std::string(StageName(Stage(s))) + ".safetensors");
        if (fs::is_regular_file(f, ec)) stages.push_back(Stage(s));
      }
      if (!stages.empty()) out[name][*version] = stages;
    }
  }
  return out;
}

std::optional<uint32_t> ModelRepository::LatestComplete(
    const std::map<uint32_t, std::vector<Stage>>& versions) {
  for (auto it = versions.rbegin(); it != versions.rend(); ++it)
    if (it->second.size() == 5) return it->first;
  return std::nullopt;
}

StatusOr<ModelHandle> ModelRepository::LoadKey(const ModelKey& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = loaded_.find(key);
    if (it != loaded_.end()) return it->second;
  }
  std::lock_guard<std::mutex> load_lock(load_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = loaded_.find(key);
    if (it != loaded_.end()) return it->second;
  }
  const std::string path = PathOf(key);
  ModelSeries* series =
      metrics_ ? metrics_->Series(key.name, key.version, int(key.stage)) : nullptr;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return NotFound("model " + key.ToString() + ": no file '" + path + "'");
  }
  auto model = Model::LoadFile(path);
  if (!model.ok()) {
    if (series) Metrics::Inc(series->load_failures);
    spdlog::warn("model load failed model={} path={} error=\"{}\"", key.ToString(), path,
                 model.status().ToString());
    return model.status().WithContext("model " + key.ToString());
  }
  if ((*model)->stage() != key.stage) {
    if (series) Metrics::Inc(series->load_failures);
    return Corruption("model " + key.ToString() + ": file '" + path + "' holds stage " +
                      StageName((*model)->stage()));
  }
  auto loaded = std::make_shared<LoadedModel>();
  loaded->key = key;
  loaded->path = path;
  loaded->model = *model;
  loaded->cost = ComputeCost((*model)->plan(), key.stage);
  loaded->series = series;
  if (series) Metrics::Inc(series->loads);
  if (metrics_)
    metrics_->SetModelInfo(key.name, key.version, int(key.stage), (*model)->info().checksum, true);
  spdlog::info("model loaded model={} path={} checksum={}", key.ToString(), path,
               (*model)->info().checksum);
  std::lock_guard<std::mutex> lock(mu_);
  loaded_[key] = loaded;
  return ModelHandle(loaded);
}

StatusOr<ModelHandle> ModelRepository::Load(const std::string& name, uint32_t version,
                                            std::optional<Stage> stage) {
  if (!IsValidModelName(name)) return NotFound("model '" + name + "' is not a valid model name");
  const Listing listing = Scan();
  auto it = listing.find(name);
  if (it == listing.end())
    return NotFound("model '" + name + "' is not in the repository '" + options_.root + "'");
  ModelKey key{name, version, stage.value_or(options_.default_stage)};
  if (version == 0) {
    auto latest = LatestComplete(it->second);
    if (!latest) return NotFound("model '" + name + "' has no complete version (s1..s5)");
    key.version = *latest;
  }
  // Make sure every label set of the key exists, even when the load fails.
  if (metrics_) metrics_->Series(key.name, key.version, int(key.stage));
  return LoadKey(key);
}

void ModelRepository::SetActiveLocked(const std::string& name, ModelHandle handle, bool follow,
                                      Stage stage) {
  ActiveEntry& a = active_[name];
  if (a.handle && metrics_)
    metrics_->SetActive(a.handle->key.name, a.handle->key.version, int(a.handle->key.stage), false);
  const bool changed = a.handle != handle;
  a.handle = std::move(handle);
  a.follow_latest = follow;
  a.stage = stage;
  if (a.handle && metrics_)
    metrics_->SetActive(name, a.handle->key.version, int(a.handle->key.stage), true);
  if (changed) generation_.fetch_add(1, std::memory_order_acq_rel);
}

Status ModelRepository::Init() {
  std::error_code ec;
  if (!fs::is_directory(options_.root, ec))
    return NotFound("model repository '" + options_.root + "' is not a directory");
  const Listing listing = Scan();
  for (const auto& [name, versions] : listing) {
    for (const auto& [v, stages] : versions)
      for (Stage s : stages) {
        if (metrics_) metrics_->Series(name, v, int(s));
        std::lock_guard<std::mutex> lock(mu_);
        seen_.insert({name, v, s});
      }
    bool done = false;
    for (auto it = versions.rbegin(); it != versions.rend() && !done; ++it) {
      if (it->second.size() != 5) continue;
      auto handle = LoadKey({name, it->first, options_.default_stage});
      if (!handle.ok()) continue;
      std::lock_guard<std::mutex> lock(mu_);
      SetActiveLocked(name, *handle, true, options_.default_stage);
      spdlog::info("model active model={} follows_latest=true", (*handle)->key.ToString());
      done = true;
    }
    if (!done) spdlog::warn("model not served name={} reason=\"no complete version loads\"", name);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (active_.empty())
    return NotFound("model repository '" + options_.root +
                    "' has no model with a complete version (s1..s5) that loads");
  if (!options_.default_model.empty() && !active_.count(options_.default_model))
    return NotFound("default model '" + options_.default_model + "' is not in the repository '" +
                    options_.root + "' or has no complete version that loads");
  return Status::Ok();
}

StatusOr<std::pair<ModelHandle, ModelHandle>> ModelRepository::Activate(
    const std::string& name, uint32_t version, std::optional<Stage> stage) {
  Stage st = options_.default_stage;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(name);
    if (it != active_.end()) st = it->second.stage;
  }
  if (stage) st = *stage;
  BILLNET_ASSIGN_OR_RETURN(ModelHandle handle, Load(name, version, st));
  std::lock_guard<std::mutex> lock(mu_);
  ModelHandle previous = active_.count(name) ? active_[name].handle : nullptr;
  SetActiveLocked(name, handle, version == 0, st);
  if (previous != handle && handle->series) Metrics::Inc(handle->series->swaps);
  spdlog::info("model activated model={} previous={} follows_latest={}", handle->key.ToString(),
               previous ? previous->key.ToString() : "none", version == 0);
  return std::make_pair(previous, handle);
}

Status ModelRepository::Unload(const ModelKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = loaded_.find(key);
  if (it == loaded_.end()) return NotFound("model " + key.ToString() + " is not loaded");
  auto a = active_.find(key.name);
  if (a != active_.end() && a->second.handle == it->second)
    return InvalidArgument("model " + key.ToString() +
                           " is active; activate another one before unloading it");
  loaded_.erase(it);
  if (metrics_) metrics_->SetModelInfo(key.name, key.version, int(key.stage), "", false);
  spdlog::info("model unloaded model={}", key.ToString());
  return Status::Ok();
}

std::string ModelRepository::default_model() const {
  if (!options_.default_model.empty()) return options_.default_model;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, a] : active_)
    if (a.handle) return name;
  return "";
}

ModelHandle ModelRepository::Active(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = active_.find(name);
  return it == active_.end() ? nullptr : it->second.handle;
}

StatusOr<ModelHandle> ModelRepository::Resolve(const std::string& requested, uint32_t version,
                                               std::optional<Stage> stage) {
  const std::string name = requested.empty() ? default_model() : requested;
  if (name.empty()) return NotFound("no model is being served");
  ModelHandle active = Active(name);
  if (version == 0 && !stage) {
    if (!active) return NotFound("model '" + name + "' is not being served");
    return active;
  }
  const uint32_t v = version != 0 ? version : (active ? active->key.version : 0);
  const Stage s = stage ? *stage : (active ? active->key.stage : options_.default_stage);
  if (!IsValidModelName(name)) return NotFound("model '" + name + "' is not a valid model name");
  if (v == 0) return Load(name, 0, s);
  if (metrics_) {
    std::error_code ec;
    if (fs::is_regular_file(PathOf({name, v, s}), ec)) metrics_->Series(name, v, int(s));
  }
  return LoadKey({name, v, s});
}

std::vector<ModelListing> ModelRepository::List() const {
  const Listing listing = Scan();
  std::vector<ModelListing> out;
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, ModelListing> by_name;
  for (const auto& [name, versions] : listing) {
    ModelListing& l = by_name[name];
    l.name = name;
    for (const auto& [v, stages] : versions) l.versions.push_back({v, stages, stages.size() == 5});
  }
  for (const auto& [name, a] : active_) {
    ModelListing& l = by_name[name];
    l.name = name;
    l.active = a.handle;
    l.follows_latest = a.follow_latest;
  }
  for (const auto& [key, handle] : loaded_) by_name[key.name].loaded.push_back(key);
  for (auto& [name, l] : by_name) out.push_back(std::move(l));
  return out;
}

void ModelRepository::Rescan() {
  const Listing listing = Scan();
  std::set<ModelKey> new_files;
  for (const auto& [name, versions] : listing)
    for (const auto& [v, stages] : versions)
      for (Stage s : stages) {
        if (metrics_) metrics_->Series(name, v, int(s));
        std::lock_guard<std::mutex> lock(mu_);
        if (seen_.insert({name, v, s}).second) new_files.insert({name, v, s});
      }
  for (const auto& [name, versions] : listing) {
    const auto latest = LatestComplete(versions);
    if (!latest) continue;
    Stage stage = options_.default_stage;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = active_.find(name);
      if (it != active_.end()) {
        if (!it->second.follow_latest) continue;
        stage = it->second.stage;
        if (it->second.handle && it->second.handle->key.version >= *latest) continue;
      }
    }
    const ModelKey key{name, *latest, stage};
    // Its series were just created: they are exported at 0 until the next pass loads it.
    if (new_files.count(key)) continue;
    const std::string path = PathOf(key);
    const auto stamp = FileStamp(path);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto f = failed_files_.find(path);
      if (f != failed_files_.end() && f->second == stamp) continue;
    }
    auto handle = LoadKey(key);
    std::lock_guard<std::mutex> lock(mu_);
    if (!handle.ok()) {
      failed_files_[path] = stamp;
      spdlog::warn("repository poll: new version not activated model={} error=\"{}\"",
                   key.ToString(), handle.status().ToString());
      continue;
    }
    failed_files_.erase(path);
    auto it = active_.find(name);
    if (it != active_.end() && !it->second.follow_latest) continue;  // changed meanwhile
    ModelHandle previous = it != active_.end() ? it->second.handle : nullptr;
    SetActiveLocked(name, *handle, true, stage);
    if ((*handle)->series) Metrics::Inc((*handle)->series->swaps);
    spdlog::info("repository poll: model activated model={} previous={}", key.ToString(),
                 previous ? previous->key.ToString() : "none");
  }
}

void ModelRepository::StartPolling() {
  if (options_.poll_interval.count() <= 0 || poll_thread_.joinable()) return;
  poll_stop_ = false;
  poll_thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(poll_mu_);
    while (!poll_stop_) {
      if (poll_cv_.wait_for(lock, options_.poll_interval, [this] { return poll_stop_; })) break;
      lock.unlock();
      Rescan();
      lock.lock();
    }
  });
}

void ModelRepository::StopPolling() {
  {
    std::lock_guard<std::mutex> lock(poll_mu_);
    poll_stop_ = true;
  }
  poll_cv_.notify_all();
  if (poll_thread_.joinable()) poll_thread_.join();
}

}  // namespace billnet::server
