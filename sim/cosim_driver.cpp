// Whole-network co-simulation driver for the Verilated accelerator top `hwgen_top`
// (rtl_templates/axis_top.py). No Python runs per cycle: a network runs millions of cycles.
//
// Files (all little-endian):
//   --in F      input beats, each ceil(in_width / 32) uint32 words (lane 0 in the low bits)
//   --load F    the weight load (docs/streams.md): --load-beats N input beats in the same
//               format, streamed before the first frame (with the same idle gaps); a file of
//               any other size is rejected
//   --ddr F     (once per AXI4 read port m_axi_ddr<k>_*, in order) the bytes of port k's
//               weight region, at address 0 (rtl_templates/axi4_reader.py); the memory model
//               answers a burst --ddr-latency N cycles after its address, at most
//               --ddr-bytes-per-cycle B bytes a cycle per port (fractional: a token bucket)
//   --out F     output beats, written in the same format, ceil(out_width / 32) words each
//   --timing F  int64 words: [total_cycles, wall_ns, in_accepted, out_received,
//               in_words, out_words, in_cycle[in_accepted], out_cycle[out_received],
//               out_tlast[out_received]]
// Cycle n is the n-th rising clock edge after reset; a beat's cycle is the edge it transfers on.
//
// Exit status: 0 done, 1 bad arguments or files, 2 timeout (message says how far it got),
// 3 an output beat arrived after the expected ones during the drain.
//
// Built by sim/cosim.py (`verilator --cc --exe --build ... cosim_driver.cpp`).

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "Vhwgen_top.h"
#include "verilated.h"
// HWGEN_DDR_PORTS(X): X(k) for every AXI4 read port m_axi_ddr<k>_* of this design (written
// per design by sim/cosim.py; empty for a design that reads no weights from DDR).
#include "hwgen_ddr_ports.h"

namespace {

// splitmix64: deterministic across platforms and libcs, unlike rand().
struct Rng {
    uint64_t state;
    explicit Rng(uint64_t seed) : state(seed) {}
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    // true with probability p; p <= 0 never draws, so a zero rate costs nothing.
    bool chance(double p) { return p > 0.0 && (next() >> 11) * 0x1.0p-53 < p; }
};

// Port accessors: Verilator types a port by width (CData/SData/IData/QData, or VlWide<N>
// above 64 bits). Both sides of a file agree on ceil(width / 32) words per beat.
template <typename T>
struct PortWords {
    static_assert(std::is_integral<T>::value, "unexpected Verilator port type");
    static constexpr size_t value = sizeof(T) <= 4 ? 1 : 2;
};
template <std::size_t N>
struct PortWords<VlWide<N>> {
    static constexpr size_t value = N;
};

template <typename T>
void set_port(T& port, const uint32_t* w) {
    uint64_t v = w[0];
    if (PortWords<T>::value == 2) v |= static_cast<uint64_t>(w[1]) << 32;
    port = static_cast<T>(v);
}
template <std::size_t N>
void set_port(VlWide<N>& port, const uint32_t* w) {
    for (size_t k = 0; k < N; ++k) port[k] = w[k];
}

template <typename T>
void get_port(const T& port, uint32_t* w) {
    const uint64_t v = static_cast<uint64_t>(port);
    w[0] = static_cast<uint32_t>(v);
    if (PortWords<T>::value == 2) w[1] = static_cast<uint32_t>(v >> 32);
}
template <std::size_t N>
void get_port(const VlWide<N>& port, uint32_t* w) {
    for (size_t k = 0; k < N; ++k) w[k] = port[k];
}

using InPort = std::remove_reference<decltype(std::declval<Vhwgen_top>().s_axis_tdata)>::type;
using OutPort = std::remove_reference<decltype(std::declval<Vhwgen_top>().m_axis_tdata)>::type;
constexpr size_t kInWords = PortWords<InPort>::value;
constexpr size_t kOutWords = PortWords<OutPort>::value;

struct Options {
    std::vector<std::string> ddr_paths;
    uint64_t ddr_latency = 64;
    double ddr_bytes_per_cycle = 16.0;
    std::string in_path, out_path, timing_path, load_path;
    uint64_t frames = 0, in_beats_per_frame = 0, out_beats_per_frame = 0, load_beats = 0;
    double idle = 0.0, backpressure = 0.0;
    uint64_t seed = 0, max_cycles = 0, drain = 8;
    long in_words = -1, out_words = -1;  // what the caller packed; checked against the ports
};

[[noreturn]] void fail(const char* fmt, const char* arg) {
    std::fprintf(stderr, "cosim_driver: ");
    std::fprintf(stderr, fmt, arg);
    std::fprintf(stderr, "\n");
    std::exit(1);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int k = 1; k < argc; ++k) {
        const std::string key = argv[k];
        if (key == "--help") {
            std::printf("usage: %s --in F --out F --timing F --frames N --in-beats-per-frame N "
                        "--out-beats-per-frame N [--idle P] [--backpressure P] [--seed S] "
                        "[--max-cycles N] [--drain N] [--in-words N] [--out-words N] "
                        "[--load F --load-beats N]\n"
                        "ports: in %zu words, out %zu words per beat\n",
                        argv[0], kInWords, kOutWords);
            std::exit(0);
        }
        if (k + 1 >= argc) fail("missing value after %s", key.c_str());
        const char* v = argv[++k];
        char* end = nullptr;
        auto num = [&]() {
            const unsigned long long x = std::strtoull(v, &end, 10);
            if (*end || !*v) fail("not a non-negative integer: %s", v);
            return static_cast<uint64_t>(x);
        };
        auto prob = [&]() {
            const double x = std::strtod(v, &end);
            if (*end || !*v || !(x >= 0.0 && x < 1.0)) fail("not a probability in [0, 1): %s", v);
            return x;
        };
        if (key == "--in") o.in_path = v;
        else if (key == "--out") o.out_path = v;
        else if (key == "--timing") o.timing_path = v;
        else if (key == "--frames") o.frames = num();
        else if (key == "--in-beats-per-frame") o.in_beats_per_frame = num();
        else if (key == "--out-beats-per-frame") o.out_beats_per_frame = num();
        else if (key == "--idle") o.idle = prob();
        else if (key == "--backpressure") o.backpressure = prob();
        else if (key == "--seed") o.seed = num();
        else if (key == "--max-cycles") o.max_cycles = num();
        else if (key == "--drain") o.drain = num();
        else if (key == "--in-words") o.in_words = static_cast<long>(num());
        else if (key == "--out-words") o.out_words = static_cast<long>(num());
        else if (key == "--load") o.load_path = v;
        else if (key == "--ddr") o.ddr_paths.push_back(v);
        else if (key == "--ddr-latency") o.ddr_latency = num();
        else if (key == "--ddr-bytes-per-cycle") {
            o.ddr_bytes_per_cycle = std::strtod(v, &end);
            if (*end || !*v || !(o.ddr_bytes_per_cycle > 0.0))
                fail("not a positive number of bytes per cycle: %s", v);
        }
        else if (key == "--load-beats") o.load_beats = num();
        else fail("unknown option %s", key.c_str());
    }
    if (o.in_path.empty() || o.out_path.empty() || o.timing_path.empty())
        fail("%s", "--in, --out and --timing are required");
    if (!o.frames || !o.in_beats_per_frame || !o.out_beats_per_frame)
        fail("%s", "--frames, --in-beats-per-frame and --out-beats-per-frame must be positive");
    if (o.in_words >= 0 && static_cast<size_t>(o.in_words) != kInWords)
        fail("--in-words disagrees with s_axis_tdata (%s)", std::to_string(kInWords).c_str());
    if (o.out_words >= 0 && static_cast<size_t>(o.out_words) != kOutWords)
        fail("--out-words disagrees with m_axis_tdata (%s)", std::to_string(kOutWords).c_str());
    if (o.load_path.empty() != (o.load_beats == 0))
        fail("%s", "--load and a positive --load-beats go together");
    if (!o.max_cycles)  // generous: a network is far slower than one beat per cycle
        o.max_cycles = 1000 + 64 * (o.frames * (o.in_beats_per_frame + o.out_beats_per_frame)
                                    + o.load_beats);
    return o;
}

// One AXI4 read port's memory: bursts queue in order, each answered `latency` cycles after
// its address was taken, beat by beat while the token bucket holds a beat's bytes.
struct DdrMemory {
    std::vector<uint8_t> image;
    size_t beat_bytes = 0;
    uint64_t latency = 0;
    double rate = 0.0, tokens = 0.0;
    struct Burst { uint64_t addr, beats, ready; };
    std::vector<Burst> queue;       // small: at most kMaxBursts
    static constexpr size_t kMaxBursts = 4;
    uint64_t beat = 0;              // beats of the head burst sent
    uint64_t bytes_read = 0;

    bool arready() const { return queue.size() < kMaxBursts; }
    // This cycle's R beat, if any: its address.
    bool rvalid(uint64_t cycle) const {
        return !queue.empty() && cycle >= queue.front().ready && tokens >= beat_bytes;
    }
    uint64_t raddr() const { return queue.front().addr + beat * beat_bytes; }
    bool rlast() const { return beat + 1 == queue.front().beats; }
    void take_address(uint64_t addr, uint64_t len, uint64_t cycle) {
        if (addr + (len + 1) * beat_bytes > image.size()) {
            std::fprintf(stderr, "cosim_driver: a DDR read of %" PRIu64 " beats at %" PRIu64
                         " runs past the %zu-byte weight region\n", len + 1, addr, image.size());
            std::exit(4);
        }
        queue.push_back({addr, len + 1, cycle + latency});
    }
    void beat_sent() {
        tokens -= beat_bytes;
        bytes_read += beat_bytes;
        if (++beat == queue.front().beats) {
            queue.erase(queue.begin());
            beat = 0;
        }
    }
    void tick() { tokens = std::min(tokens + rate, rate + beat_bytes); }
};

std::vector<uint32_t> read_words(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail("cannot open input file %s", path.c_str());
    std::vector<uint32_t> words;
    uint32_t buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, sizeof(uint32_t), 4096, f)) > 0)
        words.insert(words.end(), buffer, buffer + n);
    std::fclose(f);
    return words;
}

void write_file(const std::string& path, const void* data, size_t bytes) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || (bytes && std::fwrite(data, 1, bytes, f) != bytes))
        fail("cannot write %s", path.c_str());
    std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
    const Options opt = parse(argc, argv);
    const std::vector<uint32_t> in_words = read_words(opt.in_path);
    const uint64_t in_total = opt.frames * opt.in_beats_per_frame;
    const uint64_t out_total = opt.frames * opt.out_beats_per_frame;
    if (in_words.size() != in_total * kInWords)
        fail("input file holds the wrong number of words for the frames given: %s",
             std::to_string(in_words.size()).c_str());
    std::vector<uint32_t> load_words;
    if (opt.load_beats) {
        load_words = read_words(opt.load_path);
        if (load_words.size() != opt.load_beats * kInWords) {
            const std::string why = opt.load_path + " holds " +
                std::to_string(load_words.size()) + " words; the design's weight load is " +
                std::to_string(opt.load_beats) + " beats of " + std::to_string(kInWords) +
                " words (" + std::to_string(opt.load_beats * kInWords) + ")";
            fail("weight load of the wrong size: %s", why.c_str());
        }
    }

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vhwgen_top>(ctx.get(), "TOP");

    // The design's DDR read ports, each bound to its memory model.
    struct DdrPort {
        DdrMemory mem;
        std::function<void()> drive;            // set arready, rvalid, rdata, rlast
        std::function<void(uint64_t)> sample;   // after eval: take an address, count a beat
    };
    std::vector<DdrPort> ddr;
    uint64_t cycle = 0;
#define HWGEN_BIND_DDR(k)                                                                   \
    {                                                                                       \
        ddr.emplace_back();                                                                 \
        const size_t index = ddr.size() - 1;                                                \
        using Data = std::remove_reference<decltype(top->m_axi_ddr##k##_rdata)>::type;      \
        ddr[index].mem.beat_bytes = 4 * PortWords<Data>::value;                             \
        top->ddr##k##_base = 0;                                                             \
        ddr[index].drive = [&, index]() {                                                   \
            DdrMemory& mem = ddr[index].mem;                                                \
            top->m_axi_ddr##k##_arready = mem.arready();                                    \
            const bool valid = mem.rvalid(cycle);                                           \
            top->m_axi_ddr##k##_rvalid = valid;                                             \
            top->m_axi_ddr##k##_rlast = valid && mem.rlast();                               \
            top->m_axi_ddr##k##_rresp = 0;                                                  \
            if (valid) {                                                                    \
                uint32_t w[PortWords<Data>::value];                                         \
                std::memcpy(w, &mem.image[mem.raddr()], mem.beat_bytes);                    \
                set_port(top->m_axi_ddr##k##_rdata, w);                                     \
            }                                                                               \
        };                                                                                  \
        ddr[index].sample = [&, index](uint64_t now) {                                      \
            DdrMemory& mem = ddr[index].mem;                                                \
            const bool beat = mem.rvalid(now) && top->m_axi_ddr##k##_rready;                \
            if (top->m_axi_ddr##k##_arvalid && mem.arready())                               \
                mem.take_address(top->m_axi_ddr##k##_araddr, top->m_axi_ddr##k##_arlen, now); \
            if (beat) mem.beat_sent();                                                      \
            mem.tick();                                                                     \
        };                                                                                  \
    }
    HWGEN_DDR_PORTS(HWGEN_BIND_DDR)
#undef HWGEN_BIND_DDR
    if (opt.ddr_paths.size() != ddr.size())
        fail("the design has %s DDR read ports; give one --ddr file for each",
             std::to_string(ddr.size()).c_str());
    for (size_t k = 0; k < ddr.size(); ++k) {
        FILE* f = std::fopen(opt.ddr_paths[k].c_str(), "rb");
        if (!f) fail("cannot open DDR image %s", opt.ddr_paths[k].c_str());
        uint8_t buffer[65536];
        size_t n;
        while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0)
            ddr[k].mem.image.insert(ddr[k].mem.image.end(), buffer, buffer + n);
        std::fclose(f);
        ddr[k].mem.latency = opt.ddr_latency;
        ddr[k].mem.rate = opt.ddr_bytes_per_cycle;
    }
    Rng idle_rng(opt.seed * 2 + 1), bp_rng(opt.seed * 2 + 2);  // independent streams

    std::vector<uint32_t> out_words(out_total * kOutWords);
    std::vector<int64_t> in_cycle, out_cycle, out_last;
    in_cycle.reserve(in_total);
    out_cycle.reserve(out_total);
    out_last.reserve(out_total);

    // Reset: rst high for 3 rising edges, both streams idle.
    top->clk = 0;
    top->rst = 1;
    top->s_axis_tvalid = 0;
    top->s_axis_tlast = 0;
    top->m_axis_tready = 0;
    for (auto& port : ddr) port.drive();
    top->eval();
    for (int k = 0; k < 3; ++k) {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
    }
    top->rst = 0;

    const auto t0 = std::chrono::steady_clock::now();
    uint64_t next_in = 0, next_load = 0, received = 0, extra = 0;
    uint64_t drain_left = opt.drain;
    bool loading_beat = false;  // the beat held is a weight-load beat
    bool holding = false;  // AXI: once tvalid is up it stays up, payload unchanged, until taken
    bool finished = false;
    while (cycle < opt.max_cycles) {
        // Low phase: drive this cycle's inputs and let the combinational paths settle.
        if (!holding && next_load < opt.load_beats && !idle_rng.chance(opt.idle)) {
            set_port(top->s_axis_tdata, &load_words[next_load * kInWords]);
            top->s_axis_tlast = next_load == opt.load_beats - 1;
            holding = loading_beat = true;
        } else if (!holding && next_load == opt.load_beats && next_in < in_total &&
                   !idle_rng.chance(opt.idle)) {
            set_port(top->s_axis_tdata, &in_words[next_in * kInWords]);
            top->s_axis_tlast = (next_in % opt.in_beats_per_frame) == opt.in_beats_per_frame - 1;
            holding = true;
            loading_beat = false;
        }
        top->s_axis_tvalid = holding;
        top->m_axis_tready = finished || !bp_rng.chance(opt.backpressure);
        for (auto& port : ddr) port.drive();
        top->eval();
        for (auto& port : ddr) port.sample(cycle);
        const bool in_fire = holding && top->s_axis_tready;
        if (top->m_axis_tvalid && top->m_axis_tready) {
            if (received < out_total) {
                get_port(top->m_axis_tdata, &out_words[received * kOutWords]);
                out_cycle.push_back(static_cast<int64_t>(cycle));
                out_last.push_back(top->m_axis_tlast);
                ++received;
            } else {
                ++extra;
            }
        }
        if (in_fire && loading_beat) {
            ++next_load;
            holding = false;
        } else if (in_fire) {
            in_cycle.push_back(static_cast<int64_t>(cycle));
            ++next_in;
            holding = false;
        }
        // Rising edge: the transfers sampled above happen here.
        top->clk = 1;
        top->eval();
        top->clk = 0;
        ++cycle;
        if (finished && --drain_left == 0) break;
        if (!finished && received == out_total) {
            finished = true;
            if (!drain_left) break;
        }
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - t0;
    const double wall = elapsed.count();
    top->final();
    // Cycles up to and including the last expected output transfer; the drain is not counted.
    const int64_t total_cycles = received ? out_cycle.back() + 1 : static_cast<int64_t>(cycle);

    std::vector<int64_t> timing = {total_cycles, static_cast<int64_t>(wall * 1e9),
                                   static_cast<int64_t>(in_cycle.size()),
                                   static_cast<int64_t>(received),
                                   static_cast<int64_t>(kInWords), static_cast<int64_t>(kOutWords)};
    timing.insert(timing.end(), in_cycle.begin(), in_cycle.end());
    timing.insert(timing.end(), out_cycle.begin(), out_cycle.end());
    timing.insert(timing.end(), out_last.begin(), out_last.end());
    write_file(opt.timing_path, timing.data(), timing.size() * sizeof(int64_t));
    write_file(opt.out_path, out_words.data(), received * kOutWords * sizeof(uint32_t));

    if (!finished) {
        std::fprintf(stderr,
                     "cosim_driver: timeout after %" PRIu64 " cycles: %" PRIu64 " of %" PRIu64
                     " output beats arrived, %" PRIu64 " of %" PRIu64 " input beats accepted\n",
                     cycle, received, out_total, next_in, in_total);
        return 2;
    }
    if (extra) {
        std::fprintf(stderr, "cosim_driver: %" PRIu64 " output beats beyond the expected %" PRIu64
                     " arrived during the %" PRIu64 "-cycle drain\n", extra, out_total, opt.drain);
        return 3;
    }
    std::printf("cosim_driver: %" PRIu64 " frames, %" PRId64 " cycles, %.3f s, %.0f cycles/s\n",
                opt.frames, total_cycles, wall, wall > 0 ? total_cycles / wall : 0.0);
    return 0;
}
