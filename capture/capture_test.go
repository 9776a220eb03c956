package capture_test

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/condis-project/condis/capture"
	"github.com/condis-project/condis/internal/tsharktest"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func encode(t *testing.T, m *uni.Message) []byte {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCaptureDecodes: what a Writer writes, tshark decodes with no
// preference set: every message as Q.2931, in order, with the link's
// addresses and ports (made-up ones for a peer the address function does
// not know), its direction and its comment.
func TestCaptureDecodes(t *testing.T) {
	tshark := tsharktest.Path(t, "captures")
	file := filepath.Join(t.TempDir(), "alpha.pcapng")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	local, remote := netip.MustParseAddrPort("127.0.0.1:4800"), netip.MustParseAddrPort("127.0.0.2:4801")
	var asked []string
	w := capture.New(f, "alpha", capture.WithAddresses(func(peer string) (netip.AddrPort, netip.AddrPort, bool) {
		asked = append(asked, peer) // the Writer's goroutine only
		return local, remote, peer == "beta"
	}))
	hook := w.Tracer().Signal
	ref := uni.CallRef{Value: 42}
	sigs := []trace.Signal{
		{Peer: "beta", Dir: trace.Out, Msg: encode(t, &uni.Message{Type: uni.MsgReleaseComplete, CallRef: ref,
			Causes: []uni.CauseIE{uni.NewCause(uni.CauseNormalCallClearing)}})},
		{Peer: "beta", Dir: trace.In, Msg: encode(t, &uni.Message{Type: uni.MsgStatusEnquiry, CallRef: uni.CallRef{Value: 42, Flag: true}})},
		{Peer: "gamma", Dir: trace.In, Msg: encode(t, &uni.Message{Type: uni.MsgReleaseComplete, CallRef: uni.CallRef{Value: 7, Flag: true},
			Causes: []uni.CauseIE{uni.NewCause(uni.CauseIncompatibleDestination)}})},
		{Peer: "gamma", Dir: trace.Out, Msg: encode(t, &uni.Message{Type: uni.MsgStatusEnquiry, CallRef: uni.CallRef{Value: 7}})},
	}
	t0 := time.Unix(1_800_000_000, 5)
	for i, s := range sigs {
		s.Time, s.Node = t0.Add(time.Duration(i)*time.Millisecond), "alpha"
		hook(s)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if w.Written() != uint64(len(sigs)) || w.Dropped() != 0 {
		t.Errorf("written %d, dropped %d; want %d, 0", w.Written(), w.Dropped(), len(sigs))
	}
	if strings.Join(asked, ",") != "beta,gamma" {
		t.Errorf("addresses asked for %q, want once per peer", asked)
	}
	out := tsharktest.Run(t, tshark, "-r", file, "-T", "fields", "-E", "separator=|",
		"-e", "frame.time_epoch", "-e", "frame.protocols", "-e", "ip.src", "-e", "ip.dst",
		"-e", "exported_pdu.src_port", "-e", "exported_pdu.dst_port", "-e", "frame.comment", "-e", "frame.interface_name",
		"-e", "q2931.message_type", "-e", "q2931.call_ref_flag", "-e", "q2931.call_ref", "-e", "q2931.cause.value")
	want := "1800000000.000000005|exported_pdu:q2931|127.0.0.1|127.0.0.2|4800|4801|alpha -> beta|condis:alpha|0x5a|0|00002a|0x10\n" +
		"1800000000.001000005|exported_pdu:q2931|127.0.0.2|127.0.0.1|4801|4800|alpha <- beta|condis:alpha|0x75|1|00002a|\n" +
		"1800000000.002000005|exported_pdu:q2931|198.18.0.2|198.18.0.1|||alpha <- gamma|condis:alpha|0x5a|1|000007|0x58\n" +
		"1800000000.003000005|exported_pdu:q2931|198.18.0.1|198.18.0.2|||alpha -> gamma|condis:alpha|0x75|0|000007|\n"
	if string(out) != want {
		t.Errorf("tshark shows\n%swant\n%s", out, want)
	}
}

// blockedWriter blocks every Write until released.
type blockedWriter struct {
	release chan struct{}
	buf     bytes.Buffer
}

func (b *blockedWriter) Write(p []byte) (int, error) {
	<-b.release
	return b.buf.Write(p)
}

// TestHookNeverBlocks: with the file stuck, the hook queues up to the
// queue's length and drops the rest, counting them; once the file moves
// again Close writes what was queued. The hook copies the message: the
// emitter may reuse its slice at once.
func TestHookNeverBlocks(t *testing.T) {
	out := &blockedWriter{release: make(chan struct{})}
	const queue = 4
	w := capture.New(out, "alpha", capture.WithQueue(queue))
	hook := w.Tracer().Signal
	msg := []byte{0x09, 0x03, 0, 0, 1, 0x75, 0x80, 0, 0}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 {
			msg[4] = byte(i + 1)
			hook(trace.Signal{Time: time.Unix(1, 0), Node: "alpha", Peer: "beta", Dir: trace.Out, Msg: msg})
		}
		msg[4] = 0xff // the emitter reuses its buffer
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the Signal hook blocked on a stuck file")
	}
	if w.Dropped() != 10-queue || w.Written() != 0 {
		t.Errorf("dropped %d, written %d; want %d, 0", w.Dropped(), w.Written(), 10-queue)
	}
	close(out.release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Written() != queue {
		t.Errorf("written %d, want the %d queued", w.Written(), queue)
	}
	// The packets carry the messages as they were when traced: call
	// references 1 to 4, not the buffer's last contents.
	data := out.buf.Bytes()
	for ref := byte(1); ref <= queue; ref++ {
		m := append([]byte{0x09, 0x03, 0, 0, ref}, msg[5:]...)
		if !bytes.Contains(data, m) {
			t.Errorf("the message with call reference %d is not in the file", ref)
		}
	}
	if bytes.Contains(data, []byte{0x09, 0x03, 0, 0, 0xff}) {
		t.Error("a packet holds the emitter's buffer as it was after the hook returned")
	}
	// After Close: dropped, counted, nothing written.
	hook(trace.Signal{Peer: "beta", Dir: trace.Out, Msg: msg})
	if w.Dropped() != 10-queue+1 || w.Written() != queue {
		t.Errorf("after Close: dropped %d, written %d", w.Dropped(), w.Written())
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// failingWriter fails every Write.
type failingWriter struct{}

var errDiskFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

// TestWriteError: a file that cannot be written is reported by Close; the
// messages count as dropped.
func TestWriteError(t *testing.T) {
	w := capture.New(failingWriter{}, "alpha")
	for range 3 {
		w.Tracer().Signal(trace.Signal{Peer: "beta", Dir: trace.In, Msg: []byte{0x09, 0x03, 0, 0, 1, 0x75, 0x80, 0, 0}})
	}
	if err := w.Close(); !errors.Is(err, errDiskFull) {
		t.Errorf("Close: %v, want %v", err, errDiskFull)
	}
	if w.Written() != 0 || w.Dropped() != 3 {
		t.Errorf("written %d, dropped %d; want 0, 3", w.Written(), w.Dropped())
	}
}

// TestHeaderAtOnce: the section header and the interface are written as
// soon as the Writer starts, so that a live reader (wireshark -k -i -)
// can start decoding before the first message.
func TestHeaderAtOnce(t *testing.T) {
	r, pw := io.Pipe()
	w := capture.New(pw, "alpha")
	head := make([]byte, 4)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(head, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		t.Errorf("the stream starts with %x, want a pcapng section header", head)
	}
	go io.Copy(io.Discard, r)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
}

func TestSyntheticAddr(t *testing.T) {
	for n, want := range map[int]string{0: "198.18.0.1", 1: "198.18.0.2", 255: "198.18.1.0", 65534: "198.18.255.255", 65535: "198.19.0.0"} {
		if got := capture.SyntheticAddr(n); got.Addr().String() != want || got.Port() != 0 {
			t.Errorf("SyntheticAddr(%d) = %v, want %s:0", n, got, want)
		}
	}
}
