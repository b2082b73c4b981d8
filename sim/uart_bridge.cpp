// A Verilated UART top (`hwgen_uart_top`: clk, rst, rx, tx; boards/shells/uart_shell.py)
// behind a TCP socket, so a host program talks to it through a real byte stream: bytes
// received on the socket are sent on `rx` as 8N1 characters, characters the design sends on
// `tx` are decoded and written back to the socket. pyserial reaches it as socket://host:port.
//
// Usage: Vhwgen_uart_top --divisor N --port-file F [--max-cycles C]
//   Listens on 127.0.0.1 at a free port, writes the port number to F, accepts one connection
//   and runs until the peer closes it and the line is idle (exit 0), or C cycles pass (exit 2).
//   At exit it prints "cycles=<n> rx_bytes=<n> tx_bytes=<n>" on stdout.
//
// Built by sim/cosim.py build_cosim(..., top="hwgen_uart_top", driver=this file).

#include <arpa/inet.h>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

#include "Vhwgen_uart_top.h"
#include "verilated.h"

namespace {

// The host side of the line towards the design: 8N1, LSB first, `divisor` cycles a bit.
struct Serializer {
    int divisor;
    int bits_left = 0;       // of the current character, start and stop included
    int timer = 0;
    uint16_t frame = 0x3FF;  // line bits, LSB first
    int line() const { return frame & 1; }
    bool busy() const { return bits_left != 0; }
    void load(uint8_t byte) {
        frame = static_cast<uint16_t>((1u << 9) | (byte << 1));  // stop, data, start
        bits_left = 10;
        timer = divisor;
    }
    void tick() {
        if (bits_left && --timer == 0) {
            frame = static_cast<uint16_t>((frame >> 1) | 0x200);
            --bits_left;
            timer = divisor;
        }
    }
};

// The host side of the line from the design: samples each bit in its middle.
struct Deserializer {
    int divisor;
    int state = 0;           // 0 idle, 1..8 data bits, 9 stop bit
    int timer = 0;
    uint8_t shift = 0;
    // Returns a byte (0..255) when one completes, else -1.
    int tick(int line) {
        if (state == 0) {
            if (!line) { state = 1; timer = divisor + divisor / 2; shift = 0; }
            return -1;
        }
        if (--timer) return -1;
        timer = divisor;
        if (state <= 8) {
            shift = static_cast<uint8_t>((shift >> 1) | (line ? 0x80 : 0));
            ++state;
            return -1;
        }
        state = 0;
        return line ? shift : -1;   // a low stop bit: framing error, byte dropped
    }
};

int fail(const char* what) {
    std::fprintf(stderr, "uart_bridge: %s: %s\n", what, std::strerror(errno));
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    int divisor = 0;
    uint64_t max_cycles = UINT64_MAX;
    std::string port_file;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string opt = argv[i];
        if (opt == "--divisor") divisor = std::atoi(argv[i + 1]);
        else if (opt == "--port-file") port_file = argv[i + 1];
        else if (opt == "--max-cycles") max_cycles = std::strtoull(argv[i + 1], nullptr, 10);
        else { std::fprintf(stderr, "uart_bridge: unknown option %s\n", opt.c_str()); return 1; }
    }
    if (divisor < 4 || port_file.empty()) {
        std::fprintf(stderr, "uart_bridge: need --divisor N (>= 4) and --port-file F\n");
        return 1;
    }

    int server = socket(AF_INET, SOCK_STREAM, 0);
    if (server < 0) return fail("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr)) return fail("bind");
    if (listen(server, 1)) return fail("listen");
    socklen_t len = sizeof addr;
    getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len);
    {
        std::string tmp = port_file + ".tmp";
        FILE* f = std::fopen(tmp.c_str(), "w");
        if (!f) return fail("port file");
        std::fprintf(f, "%d\n", ntohs(addr.sin_port));
        std::fclose(f);
        std::rename(tmp.c_str(), port_file.c_str());   // the reader never sees half a number
    }
    int peer = accept(server, nullptr, nullptr);
    if (peer < 0) return fail("accept");
    close(server);
    fcntl(peer, F_SETFL, O_NONBLOCK);
    int one = 1;
    setsockopt(peer, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vhwgen_uart_top>(ctx.get());
    top->clk = 0;
    top->rx = 1;
    top->rst = 1;
    for (int k = 0; k < 4; ++k) { top->clk = !top->clk; top->eval(); }
    top->rst = 0;

    Serializer to_design{divisor};
    Deserializer from_design{divisor};
    std::deque<uint8_t> inbox;
    std::string outbox;
    bool peer_open = true;
    uint64_t cycle = 0, rx_bytes = 0, tx_bytes = 0, quiet = 0;
    uint8_t buf[4096];
    for (; cycle < max_cycles; ++cycle) {
        // Poll the socket every few bit times: a syscall per cycle would cost more than the model.
        if ((cycle & 255) == 0) {
            if (peer_open && inbox.size() < 65536) {
                ssize_t n = recv(peer, buf, sizeof buf, 0);
                if (n > 0) inbox.insert(inbox.end(), buf, buf + n);
                else if (n == 0) peer_open = false;
                else if (errno != EAGAIN && errno != EWOULDBLOCK) peer_open = false;
            }
            if (!outbox.empty()) {
                ssize_t n = send(peer, outbox.data(), outbox.size(), MSG_NOSIGNAL);
                if (n > 0) outbox.erase(0, static_cast<size_t>(n));
            }
            // Done when the host has gone, everything it sent is on the line, and the design
            // has been silent for a whole character's time after its last output.
            if (!peer_open && inbox.empty() && !to_design.busy() && outbox.empty()
                && quiet > static_cast<uint64_t>(20 * divisor) + 256 * 4) break;
        }
        if (!to_design.busy() && !inbox.empty()) {
            to_design.load(inbox.front());
            inbox.pop_front();
            ++rx_bytes;
        }
        top->rx = to_design.line();
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
        to_design.tick();
        int byte = from_design.tick(top->tx);
        quiet = (from_design.state || !top->tx) ? 0 : quiet + 1;
        if (byte >= 0) { outbox.push_back(static_cast<char>(byte)); ++tx_bytes; }
    }
    top->final();
    close(peer);
    std::printf("cycles=%" PRIu64 " rx_bytes=%" PRIu64 " tx_bytes=%" PRIu64 "\n", cycle,
                rx_bytes, tx_bytes);
    return cycle >= max_cycles ? 2 : 0;
}
