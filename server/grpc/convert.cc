#include "grpc/convert.h"

#include "billnet/session.h"

namespace billnet::server {

grpc::Status ToGrpc(const ServeStatus& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(int(status.code)), status.message);
}

ServeStatus FromProtoStage(v1::Stage stage, std::optional<Stage>* out) {
  const int s = int(stage);
  if (s == 0) {
    out->reset();
    return ServeStatus::Ok();
  }
  if (s < 1 || s > 5)
    return ServeStatus(Code::kInvalidArgument, "stage " + std::to_string(s) + " is not 1..5");
  *out = Stage(s);
  return ServeStatus::Ok();
}

v1::Stage ToProtoStage(Stage stage) { return static_cast<v1::Stage>(int(stage)); }

void ToProto(const ModelKey& key, v1::ModelId* out) {
  out->set_name(key.name);
  out->set_version(key.version);
  out->set_stage(ToProtoStage(key.stage));
}

ServeStatus FromProto(const v1::StreamConfig& in, const EventOptions& defaults, StreamConfig* out) {
  const auto bad = [](const std::string& m) {
    return ServeStatus(Code::kInvalidArgument, "stream config: " + m);
  };
  StreamConfig c;
  c.model_name = in.model().name();
  c.version = in.model().version();
  if (ServeStatus s = FromProtoStage(in.model().stage(), &c.stage); !s.ok()) return bad(s.message);
  if (in.stream_id().size() > 256) return bad("stream_id is longer than 256 bytes");
  c.stream_id = in.stream_id();
  switch (in.mode()) {
    case v1::STREAM_MODE_UNSPECIFIED:
    case v1::STREAM_MODE_LIVE:
      c.mode = StreamMode::kLive;
      break;
    case v1::STREAM_MODE_FILE:
      c.mode = StreamMode::kFile;
      break;
    default:
      return bad("mode " + std::to_string(int(in.mode())) + " is not LIVE or FILE");
  }
  if (in.container_hint().size() > 64) return bad("container_hint is longer than 64 bytes");
  c.format_hint = in.container_hint();
  if (in.demuxer_options_size() > 32) return bad("more than 32 demuxer_options");
  for (const auto& [k, v] : in.demuxer_options()) c.demuxer_options[k] = v;
  if (in.state_token().size() > TokenCodec::kMaxTokenBytes)
    return bad("state_token is larger than " + std::to_string(TokenCodec::kMaxTokenBytes) +
               " bytes");
  c.state_token = in.state_token();
  EventOptions e = defaults;
  const v1::EventOptions& pe = in.events();
  e.enabled = !pe.disabled();
  if (pe.has_smoothing()) e.smoothing = pe.smoothing();
  if (pe.has_enter_threshold()) e.enter_threshold = pe.enter_threshold();
  if (pe.has_exit_threshold()) e.exit_threshold = pe.exit_threshold();
  if (pe.has_min_duration_s()) e.min_duration_s = pe.min_duration_s();
  if (pe.background_labels_size() > 0 || pe.replace_background_labels())
    e.background_labels.assign(pe.background_labels().begin(), pe.background_labels().end());
  c.events = std::move(e);
  *out = std::move(c);
  return ServeStatus::Ok();
}

void ToProto(const GestureEvent& e, v1::GestureEvent* out) {
  out->set_label(e.label);
  out->set_label_name(e.label_name);
  out->set_start_s(e.start_s);
  out->set_end_s(e.end_s);
  out->set_confidence(e.confidence);
  out->set_start_sequence(e.start_sequence);
  out->set_end_sequence(e.end_sequence);
}

void ToProto(const WindowOutput& w, v1::WindowResult* out) {
  const Response& r = w.response;
  out->set_sequence(w.sequence);
  out->set_first_source_ts(w.first_source_ts);
  out->set_last_source_ts(w.last_source_ts);
  out->set_steps(r.steps);
  out->set_classes(r.classes);
  out->mutable_scores()->Assign(r.scores.begin(), r.scores.end());
  out->mutable_integer_scores()->Assign(r.integer_scores.begin(), r.integer_scores.end());
  out->set_scores_are_integers(r.scores_are_integers);
  out->mutable_probabilities()->Assign(r.probabilities.begin(), r.probabilities.end());
  out->mutable_top_class()->Assign(r.top_class.begin(), r.top_class.end());
  out->mutable_top_probability()->Assign(r.top_probability.begin(), r.top_probability.end());
  const std::vector<std::string>* labels = w.model ? &w.model->model->info().labels : nullptr;
  for (int c : r.top_class)
    out->add_top_label(labels && c >= 0 && size_t(c) < labels->size() ? (*labels)[c] : "");
  out->set_padded(w.padded);
  out->set_real_frames(w.real_frames);
  out->set_frames(w.frames);
  out->set_state_reset(w.state_reset);
  out->set_state_reset_reason(w.state_reset_reason);
  if (w.model) ToProto(w.model->key, out->mutable_model());
  v1::PhaseTimings* t = out->mutable_timings();
  t->set_decode_s(w.timings.decode_s);
  t->set_queue_s(w.timings.queue_s);
  t->set_inference_s(w.timings.inference_s);
  out->set_state_token(w.state_token);
  out->set_dropped_before(w.dropped_before);
}

void ToProto(const StreamSummary& s, v1::StreamSummary* out) {
  out->set_windows(s.windows);
  out->set_source_frames(s.source_frames);
  out->set_model_frames(s.model_frames);
  out->set_dropped_windows(s.dropped_windows);
  out->set_padded_windows(s.padded_windows);
  out->set_dropped_frames(s.dropped_frames);
  out->set_bytes_received(s.bytes_received);
  out->set_skipped_frames(s.skipped_frames);
  out->set_undecoded_frames(s.undecoded_frames);
}

void ToProto(const StartInfo& info, v1::StreamStarted* out) {
  const Model& m = *info.model->model;
  ToProto(info.model->key, out->mutable_model());
  out->set_frames(m.info().topology.frames);
  out->set_height(m.info().topology.height);
  out->set_width(m.info().topology.width);
  out->set_fps(m.info().frame_rate);
  for (const auto& l : m.info().labels) out->add_labels(l);
  out->set_resumed(info.resumed);
  out->set_next_sequence(info.next_sequence);
  out->set_state_reset_reason(info.reset_reason);
}

void ToProto(const LoadedModel& lm, bool active, v1::ModelInfoResponse* out) {
  const Model& m = *lm.model;
  const ModelInfo& info = m.info();
  ToProto(lm.key, out->mutable_model());
  for (const auto& l : info.labels) out->add_labels(l);
  out->set_frames(info.topology.frames);
  out->set_height(info.topology.height);
  out->set_width(info.topology.width);
  out->set_fps(info.frame_rate);
  out->set_steps(m.plan().steps);
  out->set_classes(info.topology.classes);
  out->set_temperature(info.temperature);
  out->set_parameters(lm.cost.params);
  out->set_weight_bits(lm.cost.weight_bits);
  out->set_gbops(lm.cost.gbops);
  out->set_kernel_variant(KernelVariant());
  out->set_checksum(info.checksum);
  out->set_base_channels(info.topology.base_channels);
  out->set_groups(info.topology.groups);
  out->set_lstm_units(info.topology.lstm_units);
  out->set_tail_mor_blocks(info.topology.tail_mor_blocks);
  out->set_active(active);
}

}  // namespace billnet::server
