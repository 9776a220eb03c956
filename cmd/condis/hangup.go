package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/node"
)

func hangupCmd() *cobra.Command {
	var socket string
	c := &cobra.Command{
		Use:   "hangup --control SOCK VC",
		Short: "Close the call on VC (NdisClCloseCall), whichever session holds it",
		Long: `hangup asks the node to close its call on VC (as condis calls names it:
vc#12), once what was sent on it has gone out (NdisClCloseCall: RELEASE, cause
16, normal call clearing), and returns once the call is closed. The call may
belong to any session of the node's control plane: the condis call that made
it then exits 0 saying the call was hung up; a condis listen that accepted it
goes on with its other calls. A multipoint call's leaves are dropped first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needControl(socket); err != nil {
				return err
			}
			if err := node.Hangup(cmd.Context(), socket, args[0]); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: hung up\n", args[0])
			return err
		},
	}
	controlFlag(c, &socket)
	return c
}
