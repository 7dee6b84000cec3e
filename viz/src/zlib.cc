// CRC-32, Adler-32, deflate (RFC 1951) and the zlib wrapper (RFC 1950).
//
// Deflate: greedy LZ77 over a 32 KiB window with hash chains (3-byte hash,
// bounded chain walk), cut into blocks of at most kBlockTokens tokens; each
// block is sent as whichever of stored / fixed Huffman / dynamic Huffman costs
// the fewest bits (exact counts). Dynamic codes are length-limited by halving
// the frequencies until the longest code fits (simple, a few bits worse than
// package-merge at most). Every code we emit is complete, so any inflater
// accepts it.
//
// Inflate: the canonical-Huffman decoder of zlib's "puff" (count / symbol
// tables, one bit at a time), with every read bounds-checked.
#include <algorithm>
#include <array>
#include <cstring>
#include <queue>
#include <string>
#include <vector>

#include "billnet/viz/png.h"

namespace billnet::viz {
namespace {

// ---------------------------------------------------------------- checksums

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

// ---------------------------------------------------------------- deflate tables

constexpr int kMaxBits = 15;        // longest literal/length or distance code
constexpr int kMaxCodeLenBits = 7;  // longest code-length code
constexpr int kNumLitLen = 288;     // 286 used, 2 reserved (fixed code only)
constexpr int kNumDist = 30;
constexpr int kNumCodeLen = 19;
constexpr int kEndOfBlock = 256;

constexpr uint16_t kLengthBase[29] = {3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                      15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                      67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr uint8_t kLengthExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr uint16_t kDistBase[30] = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                    33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                    1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
constexpr uint8_t kDistExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                    6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
// The order in which code-length code lengths are sent.
constexpr uint8_t kCodeLenOrder[kNumCodeLen] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                                11, 4,  12, 3, 13, 2, 14, 1, 15};

std::array<uint8_t, kNumLitLen> FixedLitLenLengths() {
  std::array<uint8_t, kNumLitLen> l{};
  for (int i = 0; i < kNumLitLen; ++i) l[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
  return l;
}

int LengthSymbol(int length) {  // 3..258 -> index into kLengthBase
  int s = 28;
  while (kLengthBase[s] > length) --s;
  return s;
}

int DistSymbol(int dist) {  // 1..32768 -> index into kDistBase
  int s = 29;
  while (kDistBase[s] > dist) --s;
  return s;
}

// ---------------------------------------------------------------- encoder

class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>* out) : out_(out) {}
  // Appends the low `n` bits of `value` (n <= 32), least significant first.
  void Put(uint32_t value, int n) {
    acc_ |= static_cast<uint64_t>(value) << count_;
    count_ += n;
    while (count_ >= 8) {
      out_->push_back(static_cast<uint8_t>(acc_));
      acc_ >>= 8;
      count_ -= 8;
    }
  }
  void AlignToByte() {
    if (count_ > 0) Put(0, 8 - count_);
  }

 private:
  std::vector<uint8_t>* out_;
  uint64_t acc_ = 0;
  int count_ = 0;
};

// Canonical codes for `lengths`, bit-reversed so BitWriter can send them as is.
std::vector<uint16_t> CanonicalCodes(const uint8_t* lengths, int n) {
  int bl_count[kMaxBits + 1] = {};
  for (int i = 0; i < n; ++i) ++bl_count[lengths[i]];
  bl_count[0] = 0;
  int next[kMaxBits + 2] = {};
  int code = 0;
  for (int bits = 1; bits <= kMaxBits; ++bits) {
    code = (code + bl_count[bits - 1]) << 1;
    next[bits] = code;
  }
  std::vector<uint16_t> codes(n, 0);
  for (int i = 0; i < n; ++i) {
    const int len = lengths[i];
    if (len == 0) continue;
    uint32_t c = next[len]++, r = 0;
    for (int b = 0; b < len; ++b) r |= ((c >> b) & 1u) << (len - 1 - b);
    codes[i] = static_cast<uint16_t>(r);
  }
  return codes;
}

// Huffman code lengths for `freq`, none longer than `limit`. Symbols with zero
// frequency get length 0. If fewer than two symbols are used, the code is
// padded to two symbols of length 1 so that it is complete.
std::vector<uint8_t> HuffmanLengths(std::vector<uint32_t> freq, int limit) {
  const int n = static_cast<int>(freq.size());
  std::vector<uint8_t> lengths(n, 0);
  std::vector<int> used;
  for (int i = 0; i < n; ++i)
    if (freq[i] > 0) used.push_back(i);
  if (used.size() < 2) {
    const int a = used.empty() ? 0 : used[0];
    const int b = a == 0 ? 1 : 0;
    lengths[a] = lengths[b] = 1;
    return lengths;
  }
  while (true) {
    // Nodes: leaves 0..m-1, internal nodes after; parent links give depths.
    const int m = static_cast<int>(used.size());
    std::vector<uint64_t> weight(2 * m - 1);
    std::vector<int> parent(2 * m - 1, -1);
    using Item = std::pair<uint64_t, int>;  // (weight, node); ties by node index
    std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
    for (int i = 0; i < m; ++i) {
      weight[i] = freq[used[i]];
      heap.push({weight[i], i});
    }
    int next = m;
    while (heap.size() > 1) {
      const Item a = heap.top();
      heap.pop();
      const Item b = heap.top();
      heap.pop();
      weight[next] = a.first + b.first;
      parent[a.second] = parent[b.second] = next;
      heap.push({weight[next], next});
      ++next;
    }
    int longest = 0;
    for (int i = 0; i < m; ++i) {
      int depth = 0;
      for (int p = parent[i]; p >= 0; p = parent[p]) ++depth;
      lengths[used[i]] = static_cast<uint8_t>(depth);
      longest = std::max(longest, depth);
    }
    if (longest <= limit) return lengths;
    for (int s : used) freq[s] = std::max<uint32_t>(1, freq[s] >> 1);
  }
}

struct Token {
  uint16_t length;  // 0: literal
  uint16_t value;   // literal byte, or match distance
};

class Matcher {
 public:
  static constexpr int kWindow = 32768;
  static constexpr int kMinMatch = 3;
  static constexpr int kMaxMatch = 258;
  static constexpr int kHashBits = 15;
  static constexpr int kMaxChain = 48;

  explicit Matcher(std::span<const uint8_t> data)
      : data_(data), head_(size_t{1} << kHashBits, -1), prev_(kWindow, -1) {}

  // The longest match for position p (length >= kMinMatch), or length 0.
  Token Find(size_t p) const {
    Token best{0, 0};
    if (p + kMinMatch > data_.size()) return best;
    const size_t max_len = std::min<size_t>(kMaxMatch, data_.size() - p);
    const uint8_t* cur = data_.data() + p;
    int64_t cand = head_[Hash(p)];
    size_t best_len = kMinMatch - 1;
    for (int chain = kMaxChain; cand >= 0 && chain > 0; --chain) {
      const size_t dist = p - static_cast<size_t>(cand);
      if (dist > static_cast<size_t>(kWindow)) break;
      const uint8_t* c = data_.data() + cand;
      if (c[best_len] == cur[best_len]) {
        size_t len = 0;
        while (len < max_len && c[len] == cur[len]) ++len;
        if (len > best_len) {
          best_len = len;
          best = {static_cast<uint16_t>(len), static_cast<uint16_t>(dist)};
          if (len == max_len) break;
        }
      }
      const int64_t next = prev_[static_cast<size_t>(cand) & (kWindow - 1)];
      if (next >= cand) break;
      cand = next;
    }
    return best;
  }

  void Insert(size_t p) {
    if (p + kMinMatch > data_.size()) return;
    const uint32_t h = Hash(p);
    prev_[p & (kWindow - 1)] = head_[h];
    head_[h] = static_cast<int64_t>(p);
  }

 private:
  uint32_t Hash(size_t p) const {
    const uint32_t v = (uint32_t{data_[p]} << 16) | (uint32_t{data_[p + 1]} << 8) | data_[p + 2];
    return (v * 2654435761u) >> (32 - kHashBits);
  }

  std::span<const uint8_t> data_;
  std::vector<int64_t> head_;
  std::vector<int64_t> prev_;
};

// One code-length code item of the dynamic block header: symbol 0..18 and its
// extra bits.
struct CodeLenItem {
  uint8_t symbol;
  uint8_t extra;
};

std::vector<CodeLenItem> RunLengthEncode(const std::vector<uint8_t>& lengths) {
  std::vector<CodeLenItem> items;
  const size_t n = lengths.size();
  for (size_t i = 0; i < n;) {
    const uint8_t v = lengths[i];
    size_t run = 1;
    while (i + run < n && lengths[i + run] == v) ++run;
    if (v == 0 && run >= 3) {
      const size_t r = std::min<size_t>(run, 138);
      if (r >= 11) {
        items.push_back({18, static_cast<uint8_t>(r - 11)});
      } else {
        items.push_back({17, static_cast<uint8_t>(r - 3)});
      }
      i += r;
    } else if (v != 0 && run >= 4) {
      items.push_back({v, 0});
      const size_t r = std::min<size_t>(run - 1, 6);
      items.push_back({16, static_cast<uint8_t>(r - 3)});
      i += 1 + r;
    } else {
      items.push_back({v, 0});
      i += 1;
    }
  }
  return items;
}

int CodeLenExtraBits(int symbol) {
  return symbol == 16 ? 2 : symbol == 17 ? 3 : symbol == 18 ? 7 : 0;
}

class Deflater {
 public:
  Deflater(std::span<const uint8_t> data, std::vector<uint8_t>* out)
      : data_(data), matcher_(data), bits_(out) {}

  void Run(bool compress) {
    if (!compress) {
      WriteStored(0, data_.size(), true);
      return;
    }
    if (data_.empty()) {
      WriteStored(0, 0, true);
      return;
    }
    size_t pos = 0;
    std::vector<Token> tokens;
    while (pos < data_.size()) {
      const size_t start = pos;
      tokens.clear();
      while (pos < data_.size() && tokens.size() < kBlockTokens) {
        Token t = matcher_.Find(pos);
        if (t.length == 0) {
          tokens.push_back({0, data_[pos]});
          matcher_.Insert(pos);
          ++pos;
        } else {
          tokens.push_back(t);
          for (size_t k = 0; k < t.length; ++k) matcher_.Insert(pos + k);
          pos += t.length;
        }
      }
      WriteBlock(tokens, start, pos, pos == data_.size());
    }
    bits_.AlignToByte();  // flush the last partial byte before the trailer
  }

 private:
  static constexpr size_t kBlockTokens = 1 << 15;

  struct Codes {
    std::vector<uint8_t> litlen_len, dist_len;
    std::vector<uint16_t> litlen, dist;
  };

  void WriteBlock(const std::vector<Token>& tokens, size_t start, size_t end, bool final) {
    std::vector<uint32_t> lit_freq(kNumLitLen, 0), dist_freq(kNumDist, 0);
    uint64_t extra_bits = 0;
    for (const Token& t : tokens) {
      if (t.length == 0) {
        ++lit_freq[t.value];
      } else {
        const int ls = LengthSymbol(t.length), ds = DistSymbol(t.value);
        ++lit_freq[257 + ls];
        ++dist_freq[ds];
        extra_bits += kLengthExtra[ls] + kDistExtra[ds];
      }
    }
    lit_freq[kEndOfBlock] = 1;

    auto body_bits = [&](const std::vector<uint8_t>& ll, const std::vector<uint8_t>& dl) {
      uint64_t b = extra_bits;
      for (int i = 0; i < kNumLitLen; ++i) b += uint64_t{lit_freq[i]} * ll[i];
      for (int i = 0; i < kNumDist; ++i) b += uint64_t{dist_freq[i]} * dl[i];
      return b;
    };

    // Fixed Huffman.
    const std::array<uint8_t, kNumLitLen> fixed_ll = FixedLitLenLengths();
    Codes fixed;
    fixed.litlen_len.assign(fixed_ll.begin(), fixed_ll.end());
    fixed.dist_len.assign(kNumDist, 5);
    const uint64_t fixed_bits = 3 + body_bits(fixed.litlen_len, fixed.dist_len);

    // Dynamic Huffman.
    Codes dyn;
    std::vector<uint32_t> lf(lit_freq.begin(), lit_freq.begin() + 286);
    dyn.litlen_len = HuffmanLengths(lf, kMaxBits);
    dyn.litlen_len.resize(kNumLitLen, 0);
    dyn.dist_len = HuffmanLengths(dist_freq, kMaxBits);
    int hlit = 286, hdist = 30;
    while (hlit > 257 && dyn.litlen_len[hlit - 1] == 0) --hlit;
    while (hdist > 1 && dyn.dist_len[hdist - 1] == 0) --hdist;
    std::vector<uint8_t> all(dyn.litlen_len.begin(), dyn.litlen_len.begin() + hlit);
    all.insert(all.end(), dyn.dist_len.begin(), dyn.dist_len.begin() + hdist);
    const std::vector<CodeLenItem> items = RunLengthEncode(all);
    std::vector<uint32_t> cl_freq(kNumCodeLen, 0);
    for (const CodeLenItem& it : items) ++cl_freq[it.symbol];
    const std::vector<uint8_t> cl_len = HuffmanLengths(cl_freq, kMaxCodeLenBits);
    int hclen = kNumCodeLen;
    while (hclen > 4 && cl_len[kCodeLenOrder[hclen - 1]] == 0) --hclen;
    uint64_t header_bits = 3 + 5 + 5 + 4 + 3 * uint64_t(hclen);
    for (const CodeLenItem& it : items)
      header_bits += cl_len[it.symbol] + CodeLenExtraBits(it.symbol);
    const uint64_t dyn_bits = header_bits + body_bits(dyn.litlen_len, dyn.dist_len);

    // Stored: 3 header bits + byte alignment + LEN/NLEN per 64 KiB piece.
    const size_t n = end - start;
    const uint64_t pieces = std::max<size_t>(1, (n + 65534) / 65535);
    const uint64_t stored_bits = pieces * (3 + 7 + 32) + 8 * uint64_t(n);

    if (stored_bits <= fixed_bits && stored_bits <= dyn_bits) {
      WriteStored(start, end, final);
      return;
    }
    if (fixed_bits <= dyn_bits) {
      bits_.Put(final ? 1 : 0, 1);
      bits_.Put(1, 2);
      fixed.litlen = CanonicalCodes(fixed.litlen_len.data(), kNumLitLen);
      fixed.dist = CanonicalCodes(fixed.dist_len.data(), kNumDist);
      WriteTokens(tokens, fixed);
      return;
    }
    bits_.Put(final ? 1 : 0, 1);
    bits_.Put(2, 2);
    bits_.Put(hlit - 257, 5);
    bits_.Put(hdist - 1, 5);
    bits_.Put(hclen - 4, 4);
    for (int i = 0; i < hclen; ++i) bits_.Put(cl_len[kCodeLenOrder[i]], 3);
    const std::vector<uint16_t> cl_codes = CanonicalCodes(cl_len.data(), kNumCodeLen);
    for (const CodeLenItem& it : items) {
      bits_.Put(cl_codes[it.symbol], cl_len[it.symbol]);
      if (const int e = CodeLenExtraBits(it.symbol)) bits_.Put(it.extra, e);
    }
    dyn.litlen = CanonicalCodes(dyn.litlen_len.data(), kNumLitLen);
    dyn.dist = CanonicalCodes(dyn.dist_len.data(), kNumDist);
    WriteTokens(tokens, dyn);
  }

  void WriteTokens(const std::vector<Token>& tokens, const Codes& c) {
    for (const Token& t : tokens) {
      if (t.length == 0) {
        bits_.Put(c.litlen[t.value], c.litlen_len[t.value]);
        continue;
      }
      const int ls = LengthSymbol(t.length), ds = DistSymbol(t.value);
      bits_.Put(c.litlen[257 + ls], c.litlen_len[257 + ls]);
      if (kLengthExtra[ls]) bits_.Put(t.length - kLengthBase[ls], kLengthExtra[ls]);
      bits_.Put(c.dist[ds], c.dist_len[ds]);
      if (kDistExtra[ds]) bits_.Put(t.value - kDistBase[ds], kDistExtra[ds]);
    }
    bits_.Put(c.litlen[kEndOfBlock], c.litlen_len[kEndOfBlock]);
  }

  void WriteStored(size_t start, size_t end, bool final) {
    size_t pos = start;
    do {
      const size_t len = std::min<size_t>(65535, end - pos);
      const bool last = final && pos + len == end;
      bits_.Put(last ? 1 : 0, 1);
      bits_.Put(0, 2);
      bits_.AlignToByte();
      bits_.Put(static_cast<uint32_t>(len), 16);
      bits_.Put(static_cast<uint32_t>(~len & 0xFFFF), 16);
      for (size_t i = 0; i < len; ++i) bits_.Put(data_[pos + i], 8);
      pos += len;
    } while (pos < end);
  }

  std::span<const uint8_t> data_;
  Matcher matcher_;
  BitWriter bits_;
};

// ---------------------------------------------------------------- inflate

struct Huffman {
  int16_t count[kMaxBits + 1];  // number of codes of each length
  std::vector<int16_t> symbol;  // symbols ordered by code
};

// Builds the decoding tables. Returns 0 for a complete code, > 0 for an
// incomplete one, < 0 for an over-subscribed one (puff's convention).
int BuildHuffman(Huffman* h, const uint8_t* lengths, int n) {
  std::fill(std::begin(h->count), std::end(h->count), 0);
  for (int s = 0; s < n; ++s) ++h->count[lengths[s]];
  if (h->count[0] == n) return 0;  // no codes: complete, but decoding fails
  int left = 1;
  for (int len = 1; len <= kMaxBits; ++len) {
    left <<= 1;
    left -= h->count[len];
    if (left < 0) return left;
  }
  int16_t offs[kMaxBits + 1];
  offs[1] = 0;
  for (int len = 1; len < kMaxBits; ++len) offs[len + 1] = offs[len] + h->count[len];
  h->symbol.assign(n, 0);
  for (int s = 0; s < n; ++s)
    if (lengths[s] != 0) h->symbol[offs[lengths[s]]++] = static_cast<int16_t>(s);
  return left;
}

class Inflater {
 public:
  Inflater(std::span<const uint8_t> in, std::vector<uint8_t>* out, size_t max_output)
      : in_(in), out_(out), max_output_(max_output) {}

  // Inflates the raw deflate data; returns "" or an error. consumed() tells
  // how many input bytes the stream used.
  std::string Run() {
    bool last = false;
    while (!last) {
      last = Bits(1) == 1;
      const uint32_t type = Bits(2);
      if (!error_.empty()) return error_;
      if (type == 0) {
        Stored();
      } else if (type == 1) {
        Fixed();
      } else if (type == 2) {
        Dynamic();
      } else {
        return "deflate: invalid block type 3";
      }
      if (!error_.empty()) return error_;
    }
    return "";
  }

  size_t consumed() const { return pos_; }  // whole bytes (partial last byte counted)

 private:
  uint32_t Bits(int need) {
    uint64_t val = bitbuf_;
    while (bitcnt_ < need) {
      if (pos_ >= in_.size()) {
        if (error_.empty()) error_ = "deflate: stream truncated";
        return 0;
      }
      val |= uint64_t{in_[pos_++]} << bitcnt_;
      bitcnt_ += 8;
    }
    bitbuf_ = val >> need;
    bitcnt_ -= need;
    return static_cast<uint32_t>(val & ((uint64_t{1} << need) - 1));
  }

  int Decode(const Huffman& h) {
    int code = 0, first = 0, index = 0;
    for (int len = 1; len <= kMaxBits; ++len) {
      code |= static_cast<int>(Bits(1));
      if (!error_.empty()) return -1;
      const int count = h.count[len];
      if (code - count < first) return h.symbol[index + (code - first)];
      index += count;
      first += count;
      first <<= 1;
      code <<= 1;
    }
    error_ = "deflate: invalid Huffman code";
    return -1;
  }

  bool Emit(uint8_t byte) {
    if (out_->size() >= max_output_) {
      error_ = "deflate: output exceeds the limit of " + std::to_string(max_output_) + " bytes";
      return false;
    }
    out_->push_back(byte);
    return true;
  }

  void Stored() {
    bitbuf_ = 0;
    bitcnt_ = 0;  // drop to the byte boundary
    if (in_.size() - pos_ < 4) {
      error_ = "deflate: stored block header truncated";
      return;
    }
    const uint32_t len = in_[pos_] | (uint32_t{in_[pos_ + 1]} << 8);
    const uint32_t nlen = in_[pos_ + 2] | (uint32_t{in_[pos_ + 3]} << 8);
    pos_ += 4;
    if (len != (~nlen & 0xFFFF)) {
      error_ = "deflate: stored block LEN/NLEN mismatch";
      return;
    }
    if (in_.size() - pos_ < len) {
      error_ = "deflate: stored block truncated";
      return;
    }
    if (max_output_ - out_->size() < len) {
      error_ = "deflate: output exceeds the limit of " + std::to_string(max_output_) + " bytes";
      return;
    }
    out_->insert(out_->end(), in_.begin() + pos_, in_.begin() + pos_ + len);
    pos_ += len;
  }

  void Codes(const Huffman& lencode, const Huffman& distcode) {
    while (true) {
      int sym = Decode(lencode);
      if (sym < 0) return;
      if (sym < 256) {
        if (!Emit(static_cast<uint8_t>(sym))) return;
        continue;
      }
      if (sym == kEndOfBlock) return;
      sym -= 257;
      if (sym >= 29) {
        error_ = "deflate: invalid length symbol";
        return;
      }
      const int len = kLengthBase[sym] + static_cast<int>(Bits(kLengthExtra[sym]));
      const int dsym = Decode(distcode);
      if (dsym < 0) return;
      if (dsym >= 30) {
        error_ = "deflate: invalid distance symbol";
        return;
      }
      const size_t dist = kDistBase[dsym] + Bits(kDistExtra[dsym]);
      if (!error_.empty()) return;
      if (dist > out_->size()) {
        error_ = "deflate: distance reaches before the start of the output";
        return;
      }
      if (max_output_ - out_->size() < static_cast<size_t>(len)) {
        error_ = "deflate: output exceeds the limit of " + std::to_string(max_output_) + " bytes";
        return;
      }
      const size_t from = out_->size() - dist;
      for (int k = 0; k < len; ++k) out_->push_back((*out_)[from + k]);
    }
  }

  void Fixed() {
    const std::array<uint8_t, kNumLitLen> ll = FixedLitLenLengths();
    uint8_t dl[kNumDist + 2];
    std::fill(std::begin(dl), std::end(dl), 5);
    Huffman lencode, distcode;
    BuildHuffman(&lencode, ll.data(), kNumLitLen);
    BuildHuffman(&distcode, dl, kNumDist + 2);
    Codes(lencode, distcode);
  }

  void Dynamic() {
    const int nlen = static_cast<int>(Bits(5)) + 257;
    const int ndist = static_cast<int>(Bits(5)) + 1;
    const int ncode = static_cast<int>(Bits(4)) + 4;
    if (!error_.empty()) return;
    if (nlen > 286 || ndist > 30) {
      error_ = "deflate: bad code counts in a dynamic block";
      return;
    }
    uint8_t lengths[kNumLitLen + kNumDist] = {};
    for (int i = 0; i < ncode; ++i) lengths[kCodeLenOrder[i]] = static_cast<uint8_t>(Bits(3));
    if (!error_.empty()) return;
    Huffman lencode, distcode;
    if (BuildHuffman(&lencode, lengths, kNumCodeLen) != 0) {
      error_ = "deflate: incomplete or over-subscribed code-length code";
      return;
    }
    std::fill(std::begin(lengths), std::end(lengths), 0);
    for (int index = 0; index < nlen + ndist;) {
      int sym = Decode(lencode);
      if (sym < 0) return;
      if (sym < 16) {
        lengths[index++] = static_cast<uint8_t>(sym);
        continue;
      }
      int len = 0, repeat;
      if (sym == 16) {
        if (index == 0) {
          error_ = "deflate: length repeat with no previous length";
          return;
        }
        len = lengths[index - 1];
        repeat = 3 + static_cast<int>(Bits(2));
      } else if (sym == 17) {
        repeat = 3 + static_cast<int>(Bits(3));
      } else {
        repeat = 11 + static_cast<int>(Bits(7));
      }
      if (!error_.empty()) return;
      if (index + repeat > nlen + ndist) {
        error_ = "deflate: code lengths overflow the counts";
        return;
      }
      while (repeat--) lengths[index++] = static_cast<uint8_t>(len);
    }
    if (lengths[kEndOfBlock] == 0) {
      error_ = "deflate: no end-of-block code";
      return;
    }
    int err = BuildHuffman(&lencode, lengths, nlen);
    if (err < 0 || (err > 0 && nlen != lencode.count[0] + lencode.count[1])) {
      error_ = "deflate: bad literal/length code";
      return;
    }
    err = BuildHuffman(&distcode, lengths + nlen, ndist);
    if (err < 0 || (err > 0 && ndist != distcode.count[0] + distcode.count[1])) {
      error_ = "deflate: bad distance code";
      return;
    }
    Codes(lencode, distcode);
  }

  std::span<const uint8_t> in_;
  std::vector<uint8_t>* out_;
  size_t max_output_;
  size_t pos_ = 0;
  uint64_t bitbuf_ = 0;
  int bitcnt_ = 0;
  std::string error_;
};

}  // namespace

uint32_t Crc32(std::span<const uint8_t> data, uint32_t crc) {
  crc = ~crc;
  for (uint8_t b : data) crc = kCrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t Adler32(std::span<const uint8_t> data, uint32_t adler) {
  constexpr uint32_t kMod = 65521;
  constexpr size_t kNmax = 5552;  // largest n with no 32-bit overflow before the modulo
  uint32_t a = adler & 0xFFFF, b = adler >> 16;
  size_t i = 0;
  while (i < data.size()) {
    const size_t end = std::min(data.size(), i + kNmax);
    for (; i < end; ++i) {
      a += data[i];
      b += a;
    }
    a %= kMod;
    b %= kMod;
  }
  return (b << 16) | a;
}

std::vector<uint8_t> ZlibCompress(std::span<const uint8_t> data, bool compress) {
  std::vector<uint8_t> out;
  out.reserve(compress ? data.size() / 4 + 64 : data.size() + data.size() / 65535 * 5 + 16);
  out.push_back(0x78);  // deflate, 32 KiB window
  out.push_back(compress ? 0x9C : 0x01);
  Deflater(data, &out).Run(compress);
  const uint32_t adler = Adler32(data);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(adler >> shift));
  return out;
}

std::string ZlibDecompress(std::span<const uint8_t> stream, std::vector<uint8_t>* out,
                           size_t max_output) {
  out->clear();
  if (stream.size() < 6)
    return "zlib: stream too short (" + std::to_string(stream.size()) + " bytes)";
  const uint8_t cmf = stream[0], flg = stream[1];
  if ((cmf & 0x0F) != 8)
    return "zlib: compression method " + std::to_string(cmf & 0x0F) + " is not deflate";
  if ((cmf >> 4) > 7) return "zlib: window size field " + std::to_string(cmf >> 4) + " above 7";
  if ((uint32_t{cmf} * 256 + flg) % 31 != 0) return "zlib: header check bits are wrong";
  if (flg & 0x20) return "zlib: preset dictionaries are not supported";
  Inflater inflater(stream.subspan(2, stream.size() - 2), out, max_output);
  if (std::string e = inflater.Run(); !e.empty()) return e;
  const size_t at = 2 + inflater.consumed();
  if (stream.size() - at < 4) return "zlib: Adler-32 trailer truncated";
  uint32_t want = 0;
  for (int k = 0; k < 4; ++k) want = (want << 8) | stream[at + k];
  if (Adler32(*out) != want) return "zlib: Adler-32 mismatch (data corrupted)";
  if (stream.size() != at + 4) {
    return "zlib: " + std::to_string(stream.size() - at - 4) + " extra bytes after the stream";
  }
  return "";
}

}  // namespace billnet::viz
