package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/node"
)

func partyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "party add|drop --control SOCK VC ...",
		Short: "Add a leaf to a point-to-multipoint call, or drop one",
		Long: `party changes the leaves of a point-to-multipoint call that the node's control
plane holds: one made by condis call with several destinations or with
--multipoint, possibly in another terminal. Name the VC, and the party, as
condis calls lists them. The condis call that owns the VC says on stderr that
a leaf was added or dropped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("party: say add or drop (condis party add --control SOCK VC NODE/SERVICE, condis party drop --control SOCK VC PARTY)")
		},
	}
	c.AddCommand(partyAddCmd(), partyDropCmd())
	return c
}

func partyAddCmd() *cobra.Command {
	var socket string
	c := &cobra.Command{
		Use:   "add --control SOCK VC NODE/SERVICE",
		Short: "Add NODE/SERVICE as a leaf of multipoint call VC (NdisClAddParty)",
		Long: `party add asks the node to add SERVICE on NODE as a leaf of its point-to-multipoint
call on VC (NdisClAddParty: ADD PARTY on the call's leg to NODE, or a new
SETUP if the call has none there) and prints the new party once it is added,
as condis calls names it ("vc#3: party#9 added (gamma/l2)"). If the leaf
cannot be added, it prints why in one line, with the NDIS status and the
Q.2931 cause, and exits 1.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needControl(socket); err != nil {
				return err
			}
			resp, err := node.AddParty(cmd.Context(), socket, args[0], args[1])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: %s added (%s)\n", resp.Vc, resp.Party, args[1])
			return err
		},
	}
	controlFlag(c, &socket)
	return c
}

func partyDropCmd() *cobra.Command {
	var socket string
	c := &cobra.Command{
		Use:   "drop --control SOCK VC PARTY",
		Short: "Drop leaf PARTY of multipoint call VC (NdisClDropParty)",
		Long: `party drop asks the node to drop PARTY (as condis calls names it: party#9) from
its point-to-multipoint call on VC (NdisClDropParty: DROP PARTY, or RELEASE
for the last leaf on its leg; the leaf's listener sees the call closed
normally) and returns once it is dropped. The last party of a call cannot be
dropped: hang the call up instead (condis hangup).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needControl(socket); err != nil {
				return err
			}
			if err := node.DropParty(cmd.Context(), socket, args[0], args[1]); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: %s dropped\n", args[0], args[1])
			return err
		},
	}
	controlFlag(c, &socket)
	return c
}
