package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/node"
)

func listenCmd() *cobra.Command {
	var (
		socket        string
		echo, verbose bool
	)
	c := &cobra.Command{
		Use:   "listen --control SOCK SERVICE",
		Short: "Accept calls on SERVICE: echo every SDU back, or write them to stdout",
		Long: `listen registers SERVICE with the node and accepts every call to it until it is
interrupted (SIGINT or SIGTERM: it then exits 0 once the node has closed its
calls). With --echo the node sends every SDU back on the VC it came from;
without it, listen writes every SDU received (on any of its calls) to stdout.
When listen ends, the node deregisters the service and closes its calls
normally. -v prints on stderr when listen is ready and each call that comes
and goes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needControl(socket); err != nil {
				return err
			}
			// SIGINT or SIGTERM ends the session cleanly (exit 0); a second
			// one kills.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			context.AfterFunc(ctx, stop)
			return runListen(ctx, socket, node.Request{Service: args[0], Echo: echo, Quiet: !verbose}, verbose, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	controlFlag(c, &socket)
	c.Flags().BoolVar(&echo, "echo", false, "echo every SDU back on its VC")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "print the calls that come and go on stderr")
	return c
}

// runListen runs a listen session until ctx ends (it then ends the session
// and waits for the node to say it is over) or the node ends it.
func runListen(ctx context.Context, socket string, req node.Request, verbose bool, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := node.DialListen(ctx, socket, req)
	if err != nil {
		return err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.End() })
	defer stop()
	if verbose {
		mode := "forwarding to stdout"
		if req.Echo {
			mode = "echo"
		}
		fmt.Fprintf(stderr, "listening on %s (%s)\n", req.Service, mode)
	}
	for {
		f, err := s.Recv()
		if err != nil {
			return fmt.Errorf("lost the node: %v", err)
		}
		switch f.Type {
		case node.FrameData:
			if _, err := stdout.Write(f.Payload); err != nil {
				return fmt.Errorf("stdout: %v", err)
			}
		case node.FrameError:
			fmt.Fprintf(stderr, "condis: %s\n", f.Payload)
		case node.FrameEvent:
			if !verbose {
				continue
			}
			ev, err := node.ParseEvent(f.Payload)
			if err != nil {
				return err
			}
			switch {
			case ev.Event == node.EventCall:
				fmt.Fprintf(stderr, "call %s from %s\n", ev.Vc, orDash(ev.Peer))
			case ev.CloseInfo != nil:
				fmt.Fprintf(stderr, "%s: %s\n", ev.Vc, ev.Text)
			}
		case node.FrameClose:
			info, err := node.ParseClose(f.Payload)
			if err != nil {
				return err
			}
			if !info.Normal {
				return errors.New(info.Text)
			}
			return nil
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
