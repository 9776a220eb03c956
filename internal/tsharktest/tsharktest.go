// Package tsharktest has the tests check Q.2931 messages against Wireshark:
// it writes them into a capture file that a stock tshark decodes as Q.2931
// with no preference set (package capture/pcapng's exported-PDU link type,
// dissector "q2931") and runs tshark on it. A machine without tshark skips
// the test, saying so on stderr as well, so that a run without -v shows it.
package tsharktest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/condis-project/condis/capture/pcapng"
)

// Path returns tshark's path, or skips tb when it is not installed; what
// says what goes unchecked ("Q.2931 wire format").
func Path(tb testing.TB, what string) string {
	tb.Helper()
	p, err := exec.LookPath("tshark")
	if err != nil {
		msg := "tshark not installed: " + what + " NOT checked against Wireshark (apt-get install tshark)"
		fmt.Fprintln(os.Stderr, "*** WARNING: "+msg+" ***")
		tb.Skip(msg)
	}
	return p
}

// Run runs tshark with args and returns what it wrote to stdout; it fails
// tb if tshark fails. A private HOME keeps the user's Wireshark profile
// (preferences, user DLTs) out of the check.
func Run(tb testing.TB, tshark string, args ...string) []byte {
	tb.Helper()
	home := tb.TempDir()
	cmd := exec.Command(tshark, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// Version is the first line of `tshark --version`, for the test log.
func Version(tshark string) string {
	out, err := exec.Command(tshark, "--version").Output()
	if err != nil {
		return "tshark (version unknown)"
	}
	line, _, _ := bytes.Cut(out, []byte("\n"))
	return string(line)
}

// WriteMessages writes msgs, one packet each and one second apart, into
// a pcapng file in a temporary directory of tb, as exported PDUs for
// Wireshark's q2931 dissector, and returns its path and where each message
// starts in its packet (tshark's PDML positions count from the packet's
// first octet).
func WriteMessages(tb testing.TB, msgs [][]byte) (path string, offsets []int) {
	tb.Helper()
	var buf bytes.Buffer
	w, err := pcapng.NewWriter(&buf, "condis tests")
	if err == nil {
		_, err = w.AddInterface(pcapng.Interface{LinkType: pcapng.LinkTypeUpperPDU})
	}
	if err != nil {
		tb.Fatal(err)
	}
	hdr := pcapng.UpperPDU{Dissector: "q2931"}
	for i, m := range msgs {
		data, err := hdr.Append(nil, m)
		if err != nil {
			tb.Fatal(err)
		}
		offsets = append(offsets, len(data)-len(m))
		if err := w.WritePacket(pcapng.Packet{Time: time.Unix(int64(i), 0), Data: data}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	path = filepath.Join(tb.TempDir(), "q2931.pcapng")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path, offsets
}
