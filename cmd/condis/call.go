package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/q2931"
)

// controlFlag adds --control: the node's control socket, by default
// $CONDIS_CONTROL.
func controlFlag(c *cobra.Command, socket *string) {
	c.Flags().StringVar(socket, "control", os.Getenv("CONDIS_CONTROL"), "the node's control socket (default $CONDIS_CONTROL)")
}

func needControl(socket string) error {
	if socket == "" {
		return errors.New("no control socket: give --control SOCK (the node's control socket) or set CONDIS_CONTROL")
	}
	return nil
}

// flowFlags are the flowspec flags of call and modify, parsed and checked
// the same way for both.
type flowFlags struct {
	service                 string
	rate, peak, bucket, sdu uint32
}

// add adds --rate, --peak, --bucket and --max-sdu to c, and --service if
// withService.
func (f *flowFlags) add(c *cobra.Command, withService bool) {
	c.Flags().Uint32Var(&f.rate, "rate", 0, "token rate, bytes/s (default: not specified)")
	c.Flags().Uint32Var(&f.peak, "peak", 0, "peak bandwidth, bytes/s (default: not specified)")
	c.Flags().Uint32Var(&f.bucket, "bucket", 0, "token bucket size, bytes (default: not specified)")
	c.Flags().Uint32Var(&f.sdu, "max-sdu", 0, "largest SDU, bytes (default: what the call manager grants)")
	if withService {
		c.Flags().StringVar(&f.service, "service", "", "service type: best-effort, controlled-load or guaranteed")
	}
}

// none reports whether no flowspec flag was given a value.
func (f *flowFlags) none() bool { return f.rate == 0 && f.peak == 0 && f.bucket == 0 && f.sdu == 0 }

// flowspec is the flowspec the flags ask for: best effort, or controlled
// load once --rate is given, unless --service says otherwise. Values a
// UNI 3.1 traffic descriptor cannot carry are refused in one line naming
// the flag and the limit, before the node is asked.
func (f *flowFlags) flowspec() (node.Flowspec, error) {
	fs := node.Flowspec{Service: f.service, Rate: f.rate, Peak: f.peak, Bucket: f.bucket, MaxSDU: f.sdu}
	if fs.Service == "" {
		fs.Service = "best-effort"
		if f.rate != 0 {
			fs.Service = "controlled-load"
		}
	}
	nf, err := fs.Ndis()
	if err != nil {
		return fs, fmt.Errorf("--service: %v", err)
	}
	// The call manager's own rule: refused here in one line rather than
	// by the node with NDIS_STATUS_INVALID_DATA.
	var fe *q2931.FlowspecError
	if errors.As(q2931.CheckFlowspec(nf), &fe) {
		return fs, errors.New(fe.Describe(flowspecFlag))
	}
	return fs, nil
}

func callCmd() *cobra.Command {
	var (
		socket     string
		flow       flowFlags
		reliable   bool
		multipoint bool
		verbose    bool
		linger     time.Duration
	)
	c := &cobra.Command{
		Use:   "call --control SOCK NODE/SERVICE [NODE/SERVICE...]",
		Short: "Call NODE/SERVICE (several: a point-to-multipoint call) and pipe stdin into the VC and the VC to stdout",
		Long: `call asks the node to call SERVICE on NODE with the given flowspec (the same in
both directions), then sends what it reads on stdin into the VC, one SDU per
read of at most the call's maximum SDU size, and writes every SDU received to
stdout. Once the call is up it prints nothing but what it receives; on
stderr it says when the flowspec granted is not what was asked (rates are
signalled in whole 48-octet cells, so 1000 bytes/s becomes 1008), and when
it ends, how many SDUs the call manager dropped because they did not
conform to the flowspec (policing), for example:

  condis: 3 SDUs of 20 dropped by policing (transmit flowspec controlled-load rate=1008 peak=2016 sdu=1500)

With two or more destinations (or --multipoint) the call is point-to-multipoint:
the first destination is called (NdisClMakeCall with a party), the others are
added as leaves once it is up (NdisClAddParty). Everything sent goes to every
leaf; in UNI 3.1 a multipoint call carries data from the root to the leaves
only, so nothing comes back and call writes nothing to stdout. A leaf that
cannot be added is reported on stderr (and call exits 1 in the end); the
call goes on with the others. Leaves added, dropped or lost later (condis
party add|drop from another terminal, or the leaf hanging up) are reported on
stderr as they happen. condis calls lists the VC and its parties.

-v says on stderr which VC the call is on (the name condis hangup, modify and
party take) and what was granted, once the call is up.

When stdin ends, the node waits for data still in flight (until nothing has
arrived for --linger), closes the call and call exits 0. If the far end closes
the call normally, call exits 0 too; so it does when the call is hung up
with condis hangup on the node, after saying so on stderr. If the call is
closed abnormally (the network, or the far end with an error), call prints
the NDIS status and the Q.2931 cause and exits 1, for example:

  condis: call closed: NDIS_STATUS_DEST_OUT_OF_ORDER (cause 27, destination out of order)

condis modify changes the call's flowspec while it runs; call says so on
stderr.

Without --rate the call is best effort; with it, controlled load (--service
overrides). Rates and the bucket are signalled in UNI 3.1 cells of 48 octets:
at most 805306272 bytes/s (bytes for --bucket), and --rate must not exceed
--peak; call refuses other values before calling.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needControl(socket); err != nil {
				return err
			}
			if linger < 0 {
				return errors.New("--linger must not be negative")
			}
			fs, err := flow.flowspec()
			if err != nil {
				return err
			}
			tx, rx := fs, fs
			req := node.Request{Dest: args[0], Tx: &tx, Rx: &rx, Reliable: reliable, LingerMs: linger.Milliseconds()}
			if multipoint || len(args) > 1 {
				// Root to leaves only: the receive direction carries nothing.
				req.Multipoint, req.Parties, req.Rx = true, args[1:], &node.Flowspec{Service: "no-traffic"}
			}
			if linger > 0 && req.LingerMs == 0 {
				req.LingerMs = 1
			}
			return runCall(cmd.Context(), socket, req, verbose, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	controlFlag(c, &socket)
	flow.add(c, true)
	c.Flags().BoolVar(&reliable, "reliable", false, "ask for reliable, ordered delivery (a transport stream) instead of best effort datagrams")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "say on stderr which VC the call is on, and what was granted, once it is up")
	c.Flags().BoolVar(&multipoint, "multipoint", false, "make a point-to-multipoint call even with one destination (more leaves: condis party add)")
	c.Flags().DurationVar(&linger, "linger", 500*time.Millisecond, "after stdin ends, close once nothing has arrived for this long (at most 10 times as long)")
	return c
}

// flowspecFlag names the flag that sets a FLOWSPEC member.
func flowspecFlag(field string) string {
	switch field {
	case "TokenRate":
		return "--rate"
	case "TokenBucketSize":
		return "--bucket"
	case "PeakBandwidth":
		return "--peak"
	case "ServiceType":
		return "--service"
	}
	return field
}

// flowspecDiff lists the members of asked that granted does not match
// ("rate 1000, peak 2000"), "" if it matches every member asked for.
// Members not asked for are the call manager's to choose.
func flowspecDiff(asked, granted *node.Flowspec) string {
	if asked == nil || granted == nil {
		return ""
	}
	var diffs []string
	if asked.Service != "" && asked.Service != granted.Service {
		diffs = append(diffs, "service "+asked.Service)
	}
	for _, m := range []struct {
		name           string
		asked, granted uint32
	}{{"rate", asked.Rate, granted.Rate}, {"peak", asked.Peak, granted.Peak}, {"bucket", asked.Bucket, granted.Bucket}, {"sdu", asked.MaxSDU, granted.MaxSDU}} {
		if m.asked != 0 && m.asked != m.granted {
			diffs = append(diffs, fmt.Sprintf("%s %d", m.name, m.asked))
		}
	}
	return strings.Join(diffs, ", ")
}

// runCall runs a call session: stdin to the VC, the VC to stdout.
func runCall(ctx context.Context, socket string, req node.Request, verbose bool, stdin io.Reader, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := node.DialCall(ctx, socket, req)
	if err != nil {
		return err
	}
	defer s.Close()
	resp := s.Response
	if verbose {
		fmt.Fprintf(stderr, "condis: %s: connected to %s: transmit %s, receive %s\n", resp.Vc, req.Dest, flowspec(resp.Tx), flowspec(resp.Rx))
	}
	refused := 0
	for _, p := range resp.Parties {
		switch {
		case p.Error != "":
			refused++
			fmt.Fprintf(stderr, "condis: %s\n", p.Error)
		case verbose:
			fmt.Fprintf(stderr, "condis: %s: party %s (%s) added\n", resp.Vc, p.Party, p.Dest)
		}
	}
	grantedTx := resp.Tx
	txDiff, rxDiff := flowspecDiff(req.Tx, resp.Tx), flowspecDiff(req.Rx, resp.Rx)
	switch {
	case txDiff != "" && txDiff == rxDiff && flowspec(resp.Tx) == flowspec(resp.Rx):
		fmt.Fprintf(stderr, "condis: %s: granted flowspec %s both ways, not what was asked (%s)\n", resp.Vc, flowspec(resp.Tx), txDiff)
	default:
		if txDiff != "" {
			fmt.Fprintf(stderr, "condis: %s: granted transmit flowspec %s, not what was asked (%s)\n", resp.Vc, flowspec(resp.Tx), txDiff)
		}
		if rxDiff != "" {
			fmt.Fprintf(stderr, "condis: %s: granted receive flowspec %s, not what was asked (%s)\n", resp.Vc, flowspec(resp.Rx), rxDiff)
		}
	}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()

	// stdin -> VC. The goroutine ends when stdin does or the session is
	// closed; call does not wait for it (like nc, it exits when the call
	// ends even if stdin is still open).
	go func() {
		size := s.Response.MaxSDU
		if size <= 0 {
			size = node.DefaultMaxSDU
		}
		buf := make([]byte, size)
		for {
			n, err := stdin.Read(buf)
			if n > 0 {
				if s.Send(buf[:n]) != nil {
					return
				}
			}
			if err != nil {
				s.End()
				return
			}
		}
	}()

	for {
		f, err := s.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("lost the node: %v", err)
		}
		switch f.Type {
		case node.FrameData:
			if _, err := stdout.Write(f.Payload); err != nil {
				return fmt.Errorf("stdout: %v", err)
			}
		case node.FrameError:
			refused++
			fmt.Fprintf(stderr, "condis: %s\n", f.Payload)
		case node.FrameEvent:
			ev, err := node.ParseEvent(f.Payload)
			if err != nil {
				return err
			}
			switch ev.Event {
			case node.EventPartyAdded:
				fmt.Fprintf(stderr, "condis: %s: party %s (%s) added\n", ev.Vc, ev.Party, orDash(ev.Dest))
			case node.EventPartyDropped:
				if ev.CloseInfo != nil {
					fmt.Fprintf(stderr, "condis: %s: %s\n", ev.Vc, ev.Text)
				}
			case node.EventQoS:
				grantedTx = ev.Tx
				fmt.Fprintf(stderr, "condis: %s: flowspec changed: transmit %s, receive %s\n", ev.Vc, flowspec(ev.Tx), flowspec(ev.Rx))
			}
		case node.FrameClose:
			info, err := node.ParseClose(f.Payload)
			if err != nil {
				return err
			}
			if info.Policed > 0 {
				fmt.Fprintf(stderr, "condis: %d SDUs of %d dropped by policing (transmit flowspec %s)\n", info.Policed, info.Sent, flowspec(grantedTx))
			}
			if !info.Normal {
				return errors.New(info.Text)
			}
			if info.By == node.ByHangup {
				fmt.Fprintf(stderr, "condis: %s\n", info.Text)
			}
			if refused > 0 {
				return fmt.Errorf("call ended with %d problem(s) reported above", refused)
			}
			return nil
		}
	}
}
