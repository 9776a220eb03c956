package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/capture"
	"github.com/condis-project/condis/ladder"
	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/uni"
)

func traceCmd() *cobra.Command {
	var (
		socket, file     string
		asJSON, all      bool
		ladders, mermaid bool
		count            int
	)
	c := &cobra.Command{
		Use:   "trace --control SOCK [-w FILE.pcapng | --json] [--all] [-c N]",
		Short: "Stream a running node's Q.2931 signalling: one line per message, JSON, or pcapng for Wireshark",
		Long: `trace subscribes to a running node's trace and prints every Q.2931 message the
node sends or receives, as it happens, one line each: the time, the node, the
direction and the peer, the message type, the call reference (value/flag: the
flag is 1 in messages to the side that chose the value) and, when the message
carries one, the cause:

  02:19:06.975321  alpha -> beta  SETUP                ref 1/0
  02:19:06.977392  alpha <- beta  CONNECT              ref 1/1
  02:19:06.977414  alpha -> beta  CONNECT ACKNOWLEDGE  ref 1/0
  02:19:07.480299  alpha -> beta  RELEASE              ref 1/0  cause 16 (normal call clearing)
  02:19:07.481381  alpha <- beta  RELEASE COMPLETE     ref 1/1  cause 16 (normal call clearing)
  02:19:07.503874  alpha -> beta  SETUP                ref 2/0
  02:19:07.504391  alpha <- beta  RELEASE COMPLETE     ref 2/1  cause 88 (incompatible destination)

--all adds the node's other events: calls offered, refused, connected, failed
and released (with their VC, service, status and cause), links up and down,
and refused handshakes:

  02:19:07.481401  alpha: call to beta/echo released on vc#4, NDIS_STATUS_SUCCESS, cause 16 (normal call clearing)

With -w FILE it writes the messages to FILE as pcapng instead (- for stdout),
which Wireshark and tshark decode as Q.2931 with no preference set:

  condis trace --control alpha.sock -w - | wireshark -k -i -

With --json it prints every event the node sends, one JSON object per line,
as the control protocol carries them (see go doc ./node, The trace stream).

With --ladder it draws each call as a ladder once it has been over for a
second: the CoNDIS requests and handlers on the node beside the Q.2931
messages to and from the peer, in time order (--mermaid: as Mermaid
sequenceDiagrams in Markdown instead). The CoNDIS columns need the node's
mediator events: start the node with condis node --trace-mediator;
without them a ladder shows the call manager, the peer and the call's
events only.

trace says on stderr once it is tracing ("condis trace: tracing node alpha;
interrupt to stop"). It runs until interrupted (SIGINT, SIGTERM), the node
stops, or -c N messages have been shown; it then exits 0. If the node drops
events because trace did not keep up, it says how many on stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needControl(socket); err != nil {
				return err
			}
			switch {
			case count < 0:
				return errors.New("-c must not be negative")
			case file != "" && asJSON:
				return errors.New("-w and --json do not go together: -w writes pcapng, --json prints the events")
			case file != "" && all:
				return errors.New("--all does not go with -w: a pcapng file holds the Q.2931 messages only")
			case (ladders || mermaid) && (file != "" || asJSON || all):
				return errors.New("--ladder and --mermaid draw calls: they do not go with -w, --json or --all")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runTrace(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), traceOptions{
				socket: socket, file: file, json: asJSON, all: all, count: count, ladder: ladders, mermaid: mermaid})
		},
	}
	controlFlag(c, &socket)
	c.Flags().StringVarP(&file, "write", "w", "", "write the messages to this pcapng file (- for stdout) instead of printing them")
	c.Flags().BoolVar(&asJSON, "json", false, "print every event as a JSON object, one per line")
	c.Flags().BoolVar(&all, "all", false, "print calls, links and refused handshakes too, not only messages")
	c.Flags().IntVarP(&count, "count", "c", 0, "stop after this many messages (0: no limit)")
	c.Flags().BoolVar(&ladders, "ladder", false, "draw each call as a text ladder, CoNDIS beside Q.2931")
	c.Flags().BoolVar(&mermaid, "mermaid", false, "draw each call as a Mermaid sequenceDiagram (Markdown)")
	return c
}

type traceOptions struct {
	socket, file    string
	json, all       bool
	ladder, mermaid bool
	count           int
}

// runTrace streams the node's trace until ctx ends, the node ends the
// session, or o.count messages were handled.
func runTrace(ctx context.Context, stdout, stderr io.Writer, o traceOptions) error {
	ts, err := node.DialTrace(ctx, o.socket)
	if err != nil {
		return err
	}
	defer ts.Close()
	fmt.Fprintf(stderr, "condis trace: tracing node %s; interrupt to stop\n", ts.Node.Node)
	// Ending ctx asks the node to end the session: what it has queued
	// still comes, then its close frame.
	stopEnd := context.AfterFunc(ctx, func() { ts.End() })
	defer stopEnd()

	var sink traceSink
	out := bufio.NewWriter(stdout)
	switch {
	case o.file != "":
		p, err := newPcapSink(o.file, stdout, ts.Node.Node)
		if err != nil {
			return err
		}
		sink = p
	case o.json:
		sink = jsonSink{out}
	case o.ladder || o.mermaid:
		f := ladder.Text
		if o.mermaid {
			f = ladder.Markdown
		}
		sink = newLadderSink(bufio.NewWriter(stdout), f) // its own: it writes from a goroutine of its own too
	default:
		sink = &lineSink{w: out, all: o.all}
	}

	notice := func(msg string) { fmt.Fprintln(stderr, "condis trace: "+msg) }
	var streamErr error
	for n := 0; o.count == 0 || n < o.count; {
		ev, err := ts.Next(notice)
		if err != nil {
			var ended *node.TraceEndedError
			if !errors.As(err, &ended) {
				streamErr = err
			} else if ctx.Err() == nil { // the node ended it: say why
				notice(ended.Close.Text)
			}
			break
		}
		if ev.Kind == node.TraceSignal {
			n++
		}
		if err := sink.event(ev); err != nil {
			streamErr = err
			break
		}
		if ts.Buffered() == 0 { // nothing more at hand: show what there is
			if err := errors.Join(out.Flush(), sink.flush()); err != nil {
				streamErr = err
				break
			}
		}
	}
	err = errors.Join(out.Flush(), sink.close(stderr))
	if streamErr != nil {
		return streamErr
	}
	return err
}

// traceSink is where the events go.
type traceSink interface {
	event(node.TraceEvent) error
	flush() error
	close(stderr io.Writer) error
}

// ladderSink draws each call once it has been over for a while
// (ladder.DefaultLinger), checking on its own every half of that, so a
// call is drawn even when no event follows it.
type ladderSink struct {
	mu   sync.Mutex
	out  *bufio.Writer
	w    *ladder.Writer
	err  error
	stop chan struct{}
	done chan struct{}
}

func newLadderSink(out *bufio.Writer, f ladder.Format) *ladderSink {
	s := &ladderSink{out: out, w: ladder.NewWriter(out, f, ladder.DefaultLinger), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(ladder.DefaultLinger / 2)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case now := <-tick.C:
				s.mu.Lock()
				if s.err == nil {
					s.err = errors.Join(s.w.Due(now), s.out.Flush())
				}
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *ladderSink) event(ev node.TraceEvent) error {
	e, ok := ev.Ladder()
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok && s.err == nil {
		s.err = s.w.Add(e)
	}
	return s.err
}

func (s *ladderSink) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *ladderSink) close(io.Writer) error {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.err, s.w.Flush(), s.out.Flush())
}

// jsonSink prints each event as one JSON line.
type jsonSink struct{ w *bufio.Writer }

func (s jsonSink) event(ev node.TraceEvent) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	s.w.Write(b)
	return s.w.WriteByte('\n')
}

func (jsonSink) flush() error          { return nil }
func (jsonSink) close(io.Writer) error { return nil }

// lineSink prints one line per message (and, with all, per other event).
type lineSink struct {
	w   *bufio.Writer
	all bool
}

func (s *lineSink) flush() error          { return nil }
func (s *lineSink) close(io.Writer) error { return nil }

func (s *lineSink) event(ev node.TraceEvent) error {
	var line string
	switch {
	case ev.Kind == node.TraceSignal:
		line = signalLine(ev)
	case !s.all:
		return nil
	default:
		line = eventLine(ev)
		if line == "" {
			return nil
		}
	}
	_, err := s.w.WriteString(ev.Time.Local().Format("15:04:05.000000") + "  " + line + "\n")
	return err
}

// signalLine describes one message: its node, direction and peer, type,
// call reference and cause. Only the cause needs the message decoded.
func signalLine(ev node.TraceEvent) string {
	arrow := " -> "
	if ev.Dir == "in" {
		arrow = " <- "
	}
	var b strings.Builder
	b.WriteString(ev.Node + arrow + ev.Peer + "  ")
	if ev.Type == "" {
		fmt.Fprintf(&b, "not a Q.2931 message (%d octets)", len(ev.Msg))
		return b.String()
	}
	fmt.Fprintf(&b, "%-19s", ev.Type) // RESTART ACKNOWLEDGE
	if ev.CallRef != nil && ev.Flag != nil {
		f := 0
		if *ev.Flag {
			f = 1
		}
		fmt.Fprintf(&b, "  ref %d/%d", *ev.CallRef, f)
	}
	m, err := uni.Decode(ev.Msg)
	switch {
	case err != nil:
		fmt.Fprintf(&b, "  (does not decode: %v)", err)
	default:
		if m.EndpointRef != nil {
			fmt.Fprintf(&b, "  endpoint %d", m.EndpointRef.Value)
		}
		for _, c := range m.Causes {
			fmt.Fprintf(&b, "  cause %s", causeWords(c.Value))
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// causeWords renders a cause as "88 (incompatible destination)".
func causeWords(c uni.Cause) string {
	s := c.String() // "incompatible destination (88)", or "cause 200"
	n := strconv.Itoa(int(c))
	if name, ok := strings.CutSuffix(s, " ("+n+")"); ok {
		return n + " (" + name + ")"
	}
	return n
}

// eventLine describes an event other than a message ("" to skip it).
func eventLine(ev node.TraceEvent) string {
	var b strings.Builder
	switch ev.Kind {
	case node.TraceCall:
		if ev.Incoming {
			fmt.Fprintf(&b, "%s: call from %s for %s %s", ev.Node, ev.Peer, ev.Service, ev.Event)
		} else {
			fmt.Fprintf(&b, "%s: call to %s/%s %s", ev.Node, ev.Peer, ev.Service, ev.Event)
		}
		if ev.Vc != "" {
			b.WriteString(" on " + ev.Vc)
		}
		if ev.SetupUs > 0 {
			fmt.Fprintf(&b, " in %v", time.Duration(ev.SetupUs)*time.Microsecond)
		}
		if ev.Status != "" {
			b.WriteString(", " + ev.Status)
		}
		if ev.Cause != 0 {
			fmt.Fprintf(&b, ", cause %s", causeWords(uni.Cause(ev.Cause)))
		}
		if ev.ByPeer {
			b.WriteString(", by the peer")
		}
	case node.TraceLink:
		fmt.Fprintf(&b, "%s: link to %s %s", ev.Node, ev.Peer, ev.Event)
		if ev.Reason != "" {
			b.WriteString(": " + ev.Reason)
		}
	case node.TraceHandshake:
		fmt.Fprintf(&b, "%s: handshake refused", ev.Node)
		if ev.Remote != "" {
			b.WriteString(" from " + ev.Remote)
		}
		if ev.Peer != "" {
			b.WriteString(" (" + ev.Peer + ")")
		}
		if ev.Reason != "" {
			b.WriteString(": " + ev.Reason)
		}
	default:
		return ""
	}
	return b.String()
}

// pcapSink writes the messages to a pcapng file with package capture.
type pcapSink struct {
	w    *capture.Writer
	f    *os.File // nil for stdout
	name string

	mu    sync.Mutex // links is read by the Writer's goroutine
	links map[string][2]netip.AddrPort
}

func newPcapSink(file string, stdout io.Writer, nodeName string) (*pcapSink, error) {
	s := &pcapSink{name: file, links: map[string][2]netip.AddrPort{}}
	out := stdout
	if file != "-" {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("-w: %v", err)
		}
		s.f, out = f, f
	}
	// A big queue: the file is written by this process alone, and
	// dropping here would lose what the node took care to deliver.
	s.w = capture.New(out, nodeName, capture.WithQueue(1<<16), capture.WithAddresses(s.addrs))
	return s, nil
}

// addrs is the capture's AddrFunc: the link addresses the node reported.
func (s *pcapSink) addrs(peer string) (local, remote netip.AddrPort, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.links[peer]
	return a[0], a[1], ok
}

func (s *pcapSink) event(ev node.TraceEvent) error {
	sig, ok := ev.Signal()
	if !ok {
		return nil
	}
	if l, r, ok := ev.LinkAddrs(); ok {
		s.mu.Lock()
		if _, seen := s.links[ev.Peer]; !seen {
			s.links[ev.Peer] = [2]netip.AddrPort{l, r}
		}
		s.mu.Unlock()
	}
	s.w.Tracer().Signal(sig)
	return nil
}

func (s *pcapSink) flush() error { return nil } // the capture's goroutine flushes each batch

func (s *pcapSink) close(stderr io.Writer) error {
	err := s.w.Close()
	to := "stdout"
	if s.f != nil {
		err = errors.Join(err, s.f.Close())
		to = s.name
	}
	fmt.Fprintf(stderr, "condis trace: %d message(s) written to %s\n", s.w.Written(), to)
	if n := s.w.Dropped(); n > 0 {
		fmt.Fprintf(stderr, "condis trace: %d message(s) not written\n", n)
	}
	if err != nil {
		return fmt.Errorf("-w %s: %v", s.name, err)
	}
	return nil
}
