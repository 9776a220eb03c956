// Command condis is the condis tool: `condis demo` runs the CoNDIS mediator
// story with in-memory drivers and prints every mediator event.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/internal/demo"
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
	}
	r.AddCommand(demoCmd())
	r.AddCommand(certCmd())
	r.AddCommand(listenCmd())
	r.AddCommand(callCmd())
	r.AddCommand(callsCmd())
	r.AddCommand(nodeCmd())
	return r
}

func demoCmd() *cobra.Command {
	var (
		topology, mode string
		quiet          bool
	)
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run the call-management story in process and print every mediator event",
		Long: `demo opens an address family, registers SAPs, makes a point-to-point call with a
flowspec, sends data both ways, has the far end hang up, makes and closes a call
locally, runs a point-to-multipoint call with two parties and drops one, and
finally withdraws the address family. Every request, handler invocation and
status is printed in order. It exits 0 only if every step behaved as the CoNDIS
contract says.`,
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
			return demo.Run(cmd.OutOrStdout(), demo.Options{Split: split, Mode: m, Quiet: quiet})
		},
	}
	c.Flags().StringVar(&topology, "topology", "mcm", "mcm (miniport call manager) or split (stand-alone CM over a CoNDIS miniport)")
	c.Flags().StringVar(&mode, "mode", "pend", "how drivers answer requests: immediate, pend or pend-early")
	c.Flags().BoolVar(&quiet, "quiet", false, "print only the steps and their checks")
	return c
}
