// billnet-client's internals (docs/client.md): the options of every command
// and the Client that runs them. client.cc holds the command line and the
// unary commands, stream.cc the Stream command (reconnect, live view,
// timeline), uplink.cc what a stream sends, view.cc the pure formatting.
#ifndef BILLNET_CLIENT_SRC_CLIENT_IMPL_H_
#define BILLNET_CLIENT_SRC_CLIENT_IMPL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "billnet/client/client.h"
#include "billnet/v1/gesture_service.grpc.pb.h"
#include "billnet/v1/model_admin.grpc.pb.h"

namespace billnet::client {

struct Options {
  std::string server = "127.0.0.1:50051";
  double timeout_s = 10;  // deadline of unary calls and of the connection
  // TLS (docs/client.md): --tls with the system's roots, --tls-ca FILE with
  // these roots; --tls-cert/--tls-key for a client certificate (mutual TLS);
  // --tls-server-name checks the server's certificate for this name.
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
  std::string model;
  uint32_t version = 0;
  std::string stage;  // s1..s5 or empty
  bool json = false;
  // classify
  std::string file;
  std::string heatmap;
  // stream
  std::string source;
  double duration_s = 0;
  bool passthrough = false;
  std::string codec = "ffv1";  // client-side encoding (not --passthrough)
  size_t chunk_bytes = 64 * 1024;
  int heatmap_windows = 8;   // stream --heatmap: the last N windows
  double reconnect_s = 30;   // how long to keep reconnecting; 0: never
  bool realtime = false;     // pace a file by its timestamps
  std::string input_format;  // FFmpeg input format (v4l2 for /dev/video*)
  std::string video_size;    // capture size WxH
  double capture_fps = 0;    // capture frame rate
  bool live_view = false;    // --live: force the live terminal view
  bool out_is_terminal = false;
  std::string timeline;  // events timeline PNG
  std::optional<float> event_smoothing, event_enter, event_exit, event_min_duration;
  std::string background_labels_text;  // comma-separated
  std::vector<std::string> background_labels;
  bool background_labels_set = false;
};

std::string StageName(v1::Stage s);
std::string ModelName(const v1::ModelId& m);

// Whether a Stream call that ended with `st` (and that the client did not
// cancel) lost its connection, so `stream` reconnects and resumes with the
// last state token: UNAVAILABLE (the server went away, or drains), CANCELLED
// (a server shut down before a file stream finished), UNKNOWN (the call ended
// without a gRPC status: an L7 proxy whose upstream died mid-call, as HAProxy
// ends it after a replica's SIGKILL; billnet-server never sends UNKNOWN).
bool ResumableStreamStatus(const grpc::Status& st);

class Client {
 public:
  // `credentials` null: plaintext.
  Client(Options o, std::ostream& out, std::ostream& err,
         std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

  int Classify();
  int Stream();  // stream.cc
  int Info(bool labels_only);
  int Health(const std::string& service);
  int ModelsList();
  int ModelsLoad();
  int ModelsActivate();
  int ModelsUnload();

 private:
  struct StreamRun;  // stream.cc

  bool Connect();
  // Waits for the connection until `deadline` without a message.
  bool WaitConnected(std::chrono::system_clock::time_point deadline);
  int Fail(const std::string& what, const grpc::Status& st);
  void SetDeadline(grpc::ClientContext* ctx, double seconds);
  bool FillModel(v1::ModelRef* ref);
  bool ReadFile(const std::string& path, std::string* bytes);
  std::vector<std::string> Labels(const v1::ModelId& id, int classes);
  int WriteHeatMap(const std::vector<const v1::WindowResult*>& windows, const v1::ModelId& model,
                   std::vector<std::string> labels, const std::string& title);
  // stream.cc
  // One Stream call: *lost when the connection dropped (resumable);
  // *local_error when the client's own side failed (decoding, encoding).
  grpc::Status StreamOnce(StreamRun* run, bool* lost, std::string* local_error);
  void PrintWindow(const v1::WindowResult& w, const std::vector<std::string>& labels);
  void PrintEvent(const v1::GestureEvent& e);
  void DrawLive(StreamRun* run);
  int WriteTimeline(const StreamRun& run);

  Options o_;
  std::ostream& out_;
  std::ostream& err_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::GestureService::Stub> stub_;
  std::unique_ptr<v1::ModelAdmin::Stub> admin_;
};

}  // namespace billnet::client

#endif  // BILLNET_CLIENT_SRC_CLIENT_IMPL_H_
