// billnet-load (issue 7, docs/performance.md "Server under load"): opens N
// concurrent live streams to a billnet server, each replaying one encoded
// video in real time, and reports the server-measured window latency
// (DESIGN.md section 3), end-to-end latency, windows/s, dropped windows, lost
// streams and the server's memory over time, as text or one JSON object; also
// per second (`timeline`) and over the steady state alone (`steady`: every
// stream live and past its first window, none ended; the start's call set-up
// and the end's padded tail windows are outside it).
//
//   billnet-load --server HOST:PORT --streams N --duration SECONDS
//                [--source FILE] [--scaled] [--server-pid PID] [--json]
//   billnet-load --plot OUT.png RESULTS.jsonl...   p99 latency against streams
#ifndef BILLNET_TOOLS_LOAD_LOAD_H_
#define BILLNET_TOOLS_LOAD_LOAD_H_

#include <ostream>
#include <string>
#include <vector>

namespace billnet::load {

// Exit codes (as billnet-client's).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;        // source, model info or plot failed
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnreachable = 3;  // no server at the address
inline constexpr int kExitNotFound = 4;     // missing source file, unknown model

// Runs one command line (args without the program name). The report goes to
// `out`, messages to `err`. Returns the exit code. A run that measured
// exits 0 even when streams were lost or windows dropped: those are results.
int RunLoad(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The q-quantile (0 <= q <= 1, nearest rank) of `values`, which it sorts; 0
// when empty.
double Quantile(std::vector<double>& values, double q);

// One run's figures for --plot.
struct RunPoint {
  double streams = 0;
  double p50_ms = 0, p99_ms = 0;
  double answered_pct = -1;  // windows answered of those sent for; < 0: not known
};
// A curve's points: one per stream count, in increasing order, each figure
// the median of that count's runs (the mean of the middle two for an even
// number; answered_pct over the runs that know it, else -1).
struct CurvePoint {
  double streams = 0;
  double p50_ms = 0, p99_ms = 0, answered_pct = -1;
  int runs = 0;
};
std::vector<CurvePoint> CurvePoints(const std::vector<RunPoint>& runs);

}  // namespace billnet::load

#endif  // BILLNET_TOOLS_LOAD_LOAD_H_
