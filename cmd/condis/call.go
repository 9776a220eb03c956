package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/node"
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

func callCmd() *cobra.Command {
	var (
		socket, service         string
		rate, peak, bucket, sdu uint32
		reliable                bool
		linger                  time.Duration
	)
	c := &cobra.Command{
		Use:   "call --control SOCK NODE/SERVICE",
		Short: "Call NODE/SERVICE and pipe stdin into the VC and the VC to stdout",
		Long: `call asks the node to call SERVICE on NODE with the given flowspec (the same in
both directions), then sends what it reads on stdin into the VC, one SDU per
read of at most the call's maximum SDU size, and writes every SDU received to
stdout.

When stdin ends, the node waits for data still in flight (until nothing has
arrived for --linger), closes the call and call exits 0. If the far end closes
the call normally, call exits 0 too. If the call is closed abnormally (the
network, or the far end with an error), call prints the NDIS status and the
Q.2931 cause and exits 1, for example:

  condis: call closed: NDIS_STATUS_DEST_OUT_OF_ORDER (cause 27, destination out of order)

Without --rate the call is best effort; with it, controlled load (--service
overrides). Rates and the bucket are signalled in UNI 3.1 cells of 48 octets:
at most 805306272 bytes/s (bytes for --bucket), and --rate must not exceed
--peak; call refuses other values before calling.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needControl(socket); err != nil {
				return err
			}
			if linger < 0 {
				return errors.New("--linger must not be negative")
			}
			fs := node.Flowspec{Service: service, Rate: rate, Peak: peak, Bucket: bucket, MaxSDU: sdu}
			if fs.Service == "" {
				fs.Service = "best-effort"
				if rate != 0 {
					fs.Service = "controlled-load"
				}
			}
			nf, err := fs.Ndis()
			if err != nil {
				return fmt.Errorf("--service: %v", err)
			}
			// The call manager's own rule: refused here in one line
			// rather than by the node with NDIS_STATUS_INVALID_DATA.
			var fe *mcm.FlowspecError
			if errors.As(mcm.CheckFlowspec(nf), &fe) {
				return errors.New(fe.Describe(flowspecFlag))
			}
			tx, rx := fs, fs
			req := node.Request{Dest: args[0], Tx: &tx, Rx: &rx, Reliable: reliable, LingerMs: linger.Milliseconds()}
			if linger > 0 && req.LingerMs == 0 {
				req.LingerMs = 1
			}
			return runCall(cmd.Context(), socket, req, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	controlFlag(c, &socket)
	c.Flags().Uint32Var(&rate, "rate", 0, "token rate, bytes/s (default: not specified)")
	c.Flags().Uint32Var(&peak, "peak", 0, "peak bandwidth, bytes/s (default: not specified)")
	c.Flags().Uint32Var(&bucket, "bucket", 0, "token bucket size, bytes (default: not specified)")
	c.Flags().Uint32Var(&sdu, "max-sdu", 0, "largest SDU, bytes (default: what the call manager grants)")
	c.Flags().StringVar(&service, "service", "", "service type: best-effort, controlled-load or guaranteed")
	c.Flags().BoolVar(&reliable, "reliable", false, "ask for reliable, ordered delivery (a transport stream) instead of best effort datagrams")
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

// runCall runs a call session: stdin to the VC, the VC to stdout.
func runCall(ctx context.Context, socket string, req node.Request, stdin io.Reader, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := node.DialCall(ctx, socket, req)
	if err != nil {
		return err
	}
	defer s.Close()
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

	refused := 0
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
		case node.FrameClose:
			info, err := node.ParseClose(f.Payload)
			if err != nil {
				return err
			}
			if !info.Normal {
				return errors.New(info.Text)
			}
			if refused > 0 {
				return fmt.Errorf("call ended with %d problem(s) reported above", refused)
			}
			return nil
		}
	}
}
