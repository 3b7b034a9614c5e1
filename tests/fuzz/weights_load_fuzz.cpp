// libFuzzer target: the weights loaders. MultiHeadAttention::load (format "ATKW") and
// ASAMLayer::load ("ATKA") on fuzzed buffers, and both layers' load_named (PyTorch-style
// names, runtime/named_weights.h) on fuzzed lists of names, sizes and values.
//
// Buffers are raw fuzz bytes, or a real save() (of the same or another shape) with fuzzed
// byte edits, special floats, truncation or extension, its checksum resealed or not:
// FNV-1a is not something a mutator finds by chance, and a buffer the checksum refuses
// tests nothing behind it.
//
// Invariants: only AttnError escapes; a refused load leaves the weights bit for bit as they
// were; an accepted binary load holds exactly the buffer (save() gives it back); whatever is
// accepted holds only finite weights (SPEC: a bad buffer is refused), and a layer with
// moderate weights gives finite outputs for finite inputs afterwards.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "asam/asam_layer.h"
#include "fuzz_common.h"
#include "multihead/multihead_attention.h"
#include "runtime/weights_format.h"

namespace {

using attn::MultiHeadAttention;
using attn::MultiHeadConfig;
using attn::NamedWeights;
using attn::asam::ASAMConfig;
using attn::asam::ASAMLayer;

MultiHeadConfig mha_config(FuzzedDataProvider& in) {
  MultiHeadConfig c;
  c.heads = in.ConsumeIntegralInRange(1, 3);
  c.model_dim = c.heads * in.ConsumeIntegralInRange(1, 4);
  c.kdim = in.ConsumeIntegralInRange(0, 7);
  c.vdim = in.ConsumeIntegralInRange(0, 7);
  c.bias = in.ConsumeBool();
  c.seed = in.ConsumeIntegral<uint8_t>();
  return c;
}

ASAMConfig asam_config(FuzzedDataProvider& in) {
  ASAMConfig c;
  c.num_heads = in.ConsumeIntegralInRange(1, 3);
  c.dim = c.num_heads * in.ConsumeIntegralInRange(1, 4);
  c.dim_head = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange(1, 5);
  c.num_clusters = in.ConsumeIntegralInRange(1, 4);
  c.gate_hidden_dim = in.ConsumeIntegralInRange(1, 6);
  c.pattern_type = "local";
  c.window_size = 8;
  c.block_size = 32;
  c.seed = in.ConsumeIntegral<uint8_t>();
  return c;
}

// The buffer a load is given (see the header comment).
std::vector<uint8_t> make_buffer(FuzzedDataProvider& in, std::vector<uint8_t> saved, const std::vector<uint8_t>& other) {
  const int mode = in.ConsumeIntegralInRange(0, 3);
  if (mode == 0) return in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 4096));
  std::vector<uint8_t> buf = mode == 3 ? other : std::move(saved);
  const int edits = in.ConsumeIntegralInRange(0, 6);
  for (int i = 0; i < edits && !buf.empty(); ++i) {
    const size_t at = in.ConsumeIntegralInRange<size_t>(0, buf.size() - 1);
    if (in.ConsumeBool()) {
      buf[at] ^= in.ConsumeIntegral<uint8_t>();
    } else if (at >= 8 && buf.size() >= 4 && at + 4 <= buf.size() - 4) {  // a float (or field) becomes special
      const float f = fuzz::special_value(in.ConsumeIntegral<uint8_t>());
      std::memcpy(buf.data() + at, &f, sizeof f);
    }
  }
  const int resize = in.ConsumeIntegralInRange(0, 7);
  if (resize == 1) buf.resize(in.ConsumeIntegralInRange<size_t>(0, buf.size()));
  if (resize == 2) buf.resize(buf.size() + in.ConsumeIntegralInRange<size_t>(1, 64), in.ConsumeIntegral<uint8_t>());
  if (in.ConsumeIntegralInRange(0, 3) != 0 && buf.size() >= 4) {  // reseal: the checksum passes
    buf.resize(buf.size() - 4);
    attn::weights_format::seal(buf);
  }
  return buf;
}

// The float32 weights of a save(), after its header (every float is a weight).
bool saved_weights_finite(const std::vector<uint8_t>& saved, size_t header, float* largest) {
  *largest = 0;
  for (size_t at = header; at + 4 + 4 <= saved.size(); at += 4) {
    float f;
    std::memcpy(&f, saved.data() + at, sizeof f);
    if (!std::isfinite(f)) return false;
    *largest = std::max(*largest, std::fabs(f));
  }
  return true;
}

// Entries with the layer's names (or others), of the right size or one off, fuzzed values.
NamedWeights make_named(FuzzedDataProvider& in, const std::vector<std::pair<std::string, size_t>>& expected) {
  NamedWeights named;
  const bool all_first = in.ConsumeBool();  // start from a complete, correct set
  if (all_first) {
    for (const auto& [name, count] : expected) named.emplace_back(name, fuzz::make_tensor(in, count).x);
  }
  const int extra = in.ConsumeIntegralInRange(0, all_first ? 3 : 10);
  for (int i = 0; i < extra; ++i) {
    const size_t pick = in.ConsumeIntegralInRange<size_t>(0, expected.size());
    std::string name = pick < expected.size() ? expected[pick].first : in.ConsumeRandomLengthString(24);
    const size_t count = pick < expected.size() ? expected[pick].second : in.ConsumeIntegralInRange<size_t>(0, 40);
    const int delta = in.PickValueInArray({0, 0, 0, -1, 1});
    const size_t n = delta < 0 && count == 0 ? 0 : count + size_t(int64_t(delta));
    const size_t slot = in.ConsumeIntegralInRange<size_t>(0, named.size());
    named.insert(named.begin() + int64_t(slot), {name, fuzz::make_tensor(in, n).x});
  }
  return named;
}

// What a load must leave behind, for both layers: a refused load keeps the weights (false:
// nothing more to check), an accepted buffer is what save() gives back, and the weights
// are finite (their largest magnitude in *largest; the saved header is header_bytes long).
bool loaded_as_expected(const std::vector<uint8_t>& before, const std::vector<uint8_t>& after, bool loaded,
                        const std::vector<uint8_t>* buffer, size_t header_bytes, float* largest) {
  if (!loaded) {
    fuzz::require(after == before, "a refused load changed the weights");
    return false;
  }
  if (buffer != nullptr) fuzz::require(after == *buffer, "an accepted buffer is not what save() gives back");
  fuzz::require(saved_weights_finite(after, header_bytes, largest), "a load accepted weights that are not finite");
  return true;
}

void check_mha(FuzzedDataProvider& in, bool named_path) {
  const MultiHeadConfig config = mha_config(in);
  MultiHeadAttention layer(config);
  const MultiHeadConfig& c = layer.config();
  const std::vector<uint8_t> before = layer.save();
  std::vector<uint8_t> buffer;
  bool loaded;
  if (named_path) {
    const size_t e = size_t(c.model_dim), kd = size_t(c.kdim), vd = size_t(c.vdim);
    std::vector<std::pair<std::string, size_t>> expected = {{"out_proj.weight", e * e}};
    if (kd == e && vd == e && in.ConsumeBool()) {
      expected.push_back({"in_proj_weight", 3 * e * e});
    } else {
      expected.insert(expected.end(), {{"q_proj_weight", e * e}, {"k_proj_weight", e * kd}, {"v_proj_weight", e * vd}});
    }
    if (c.bias || in.ConsumeIntegralInRange(0, 7) == 0) {
      expected.insert(expected.end(), {{"in_proj_bias", 3 * e}, {"out_proj.bias", e}});
    }
    const NamedWeights named = make_named(in, expected);
    loaded = fuzz::returns([&] { layer.load_named(named); });
  } else {
    MultiHeadConfig other_config = c;
    other_config.seed = c.seed + 1;
    if (in.ConsumeBool()) other_config.model_dim = c.heads * in.ConsumeIntegralInRange(1, 4), other_config.kdim = other_config.vdim = 0;
    if (in.ConsumeBool()) other_config.bias = !c.bias;
    MultiHeadConfig same = c;
    same.seed = c.seed + 2;
    buffer = make_buffer(in, MultiHeadAttention(same).save(), MultiHeadAttention(other_config).save());
    loaded = fuzz::returns([&] { layer.load(buffer.data(), buffer.size()); });
  }
  const std::vector<uint8_t> after = layer.save();
  float largest;
  if (!loaded_as_expected(before, after, loaded, named_path ? nullptr : &buffer, 4 + 4 * 6, &largest)) return;
  if (largest > 1e4f) return;
  const int seq = 3;
  std::vector<float> query(size_t(seq) * c.model_dim, 0.5f), key(size_t(seq) * c.kdim, -0.25f),
      value(size_t(seq) * c.vdim, 1.0f), out(size_t(seq) * c.model_dim);
  fuzz::require(fuzz::returns([&] {
                  layer.forward(1, seq, seq, query.data(), key.data(), value.data(), {}, attn::CausalAlign::kNone,
                                out.data(), nullptr);
                }),
                "forward refused a call after a load");
  fuzz::require(fuzz::all_finite(out.data(), out.size()), "forward not finite after an accepted load");
}

void check_asam(FuzzedDataProvider& in, bool named_path) {
  const ASAMConfig config = asam_config(in);
  ASAMLayer layer(config);
  const std::vector<uint8_t> before = layer.save();
  std::vector<uint8_t> buffer;
  NamedWeights named;
  bool loaded;
  if (named_path) {
    std::vector<std::pair<std::string, size_t>> expected;
    for (const auto& p : layer.named_parameters()) expected.push_back({p.name, size_t(p.count())});
    named = make_named(in, expected);
    loaded = fuzz::returns([&] { layer.load_named(named); });
  } else {
    ASAMConfig same = layer.config(), other = layer.config();
    same.seed += 1;
    other.seed += 2;
    if (in.ConsumeBool()) other.num_clusters += 1;
    if (in.ConsumeBool()) other.gate_hidden_dim += 1;
    buffer = make_buffer(in, ASAMLayer(same).save(), ASAMLayer(other).save());
    loaded = fuzz::returns([&] { layer.load(buffer.data(), buffer.size()); });
  }
  const std::vector<uint8_t> after = layer.save();
  float largest;
  if (!loaded_as_expected(before, after, loaded, named_path ? nullptr : &buffer, 4 + 4 + 4 * 6, &largest)) return;
  if (named_path) {  // each weight is the last entry of its name
    for (const auto& p : layer.named_parameters()) {
      const std::vector<float>* given = nullptr;
      for (const auto& [name, x] : named) {
        if (name == p.name) given = &x;
      }
      fuzz::require(given != nullptr && std::memcmp(given->data(), p.data, given->size() * sizeof(float)) == 0,
                    "load_named did not store the given weights");
    }
  }
  if (largest > 1e4f) return;
  const int seq = 5;
  const ASAMConfig& c = layer.config();
  std::vector<float> x(size_t(seq) * c.dim), out(x.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) * 0.25f - 0.75f;
  fuzz::require(fuzz::returns([&] { layer.forward(1, seq, x.data(), {}, out.data(), nullptr, nullptr); }),
                "forward refused a call after a load");
  fuzz::require(fuzz::all_finite(out.data(), out.size()), "forward not finite after an accepted load");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: check_mha(in, false); break;
    case 1: check_mha(in, true); break;
    case 2: check_asam(in, false); break;
    default: check_asam(in, true); break;
  }
  return 0;
}
