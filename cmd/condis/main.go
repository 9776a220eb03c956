// Command condis is the condis tool: `condis demo` runs the CoNDIS mediator
// story with in-memory drivers and prints every mediator event.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/internal/demo"
	"github.com/condis-project/condis/node"
)

func main() {
	if err := root().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "condis:", err)
		os.Exit(1)
	}
}

func root() *cobra.Command {
	r := &cobra.Command{
		Use:           "condis",
		Short:         "CoNDIS call management: clients, call managers and the NDIS mediator, runnable",
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version: the module version, the VCS revision and the
		// toolchain, from the build information in the binary.
		Version: node.Build().String(),
	}
	r.SetVersionTemplate("condis {{.Version}}\n")
	r.AddCommand(demoCmd())
	r.AddCommand(certCmd())
	r.AddCommand(listenCmd())
	r.AddCommand(callCmd())
	r.AddCommand(callsCmd())
	r.AddCommand(nodeCmd())
	r.AddCommand(benchCmd())
	r.AddCommand(peersCmd())
	r.AddCommand(statusCmd())
	r.AddCommand(traceCmd())
	r.AddCommand(partyCmd())
	r.AddCommand(modifyCmd())
	r.AddCommand(hangupCmd())
	return r
}

func demoCmd() *cobra.Command {
	var (
		topology, mode string
		quiet, memory  bool
		t309           time.Duration
		traceDir       string
	)
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run the call-management story on three nodes in this process and print every event",
		Long: `demo starts three condis nodes in this process (alpha, beta, gamma), each with its
own mediator and Q.2931 miniport call manager, speaking QUIC with mutual TLS on
127.0.0.1 under throwaway certificates, and binds a client to each. The clients
open the address family and register SAPs; alice makes a point-to-point call with
a flowspec and sends data both ways, the far end hangs up; she calls again and
hangs up herself; two calls are refused by the far node (no SAP matches: cause
88; an access list: cause 21); a point-to-multipoint call gets leaves on the two
other nodes and drops one; finally gamma is cut off without a word and alice is
told NDIS_STATUS_DEST_OUT_OF_ORDER once T309 (shortened) expires. Every mediator
request, handler invocation and status, and what the call managers did on the
network, is printed in order, the Q.2931 messages by name (SETUP, CONNECT,
RELEASE ... with their causes). It exits 0 only if every step behaved as the
CoNDIS contract and Q.2931 say.

With --trace DIR it also writes DIR/calls.md: a Mermaid sequence chart per call
of the story, the CoNDIS requests and handlers on each node beside the Q.2931
messages between the nodes.

With --in-memory it tells the mediator's story alone, over in-memory drivers, in
either topology (--topology) and with every driver answering per --mode.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := demo.ParseMode(mode)
			if err != nil {
				return err
			}
			var split bool
			switch topology {
			case "mcm":
			case "split":
				split = true
			default:
				return fmt.Errorf("unknown topology %q (mcm or split)", topology)
			}
			if memory && traceDir != "" {
				return fmt.Errorf("--trace draws the calls of the network story; with --in-memory there is no Q.2931 to draw (drop one of them)")
			}
			if memory {
				return demo.Run(cmd.OutOrStdout(), demo.Options{Split: split, Mode: m, Quiet: quiet})
			}
			if cmd.Flags().Changed("topology") {
				return fmt.Errorf("--topology applies to --in-memory; nodes always run a miniport call manager")
			}
			return demo.RunNetwork(cmd.OutOrStdout(), demo.NetOptions{Mode: m, Quiet: quiet, T309: t309, TraceDir: traceDir})
		},
	}
	c.Flags().BoolVar(&memory, "in-memory", false, "the mediator alone, over in-memory drivers (no network)")
	c.Flags().StringVar(&topology, "topology", "mcm", "with --in-memory: mcm (miniport call manager) or split (stand-alone CM over a CoNDIS miniport)")
	c.Flags().StringVar(&mode, "mode", "pend", "how the clients (and, with --in-memory, every driver) answer requests: immediate, pend or pend-early")
	c.Flags().BoolVar(&quiet, "quiet", false, "print only the steps, their checks and the network events")
	c.Flags().StringVar(&traceDir, "trace", "", "write `DIR`/calls.md: a Mermaid sequence chart per call, CoNDIS and Q.2931 side by side")
	c.Flags().DurationVar(&t309, "t309", 2*time.Second, "T309 on the nodes (the standard value is 10s)")
	return c
}
