package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/node"
)

func callsCmd() *cobra.Command {
	var (
		socket string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "calls --control SOCK [--json]",
		Short: "Show the node's ATM address and list its VCs: state, peer, service, flowspecs, parties and counters",
		Long: `calls prints the node's ATM address and a table of its VCs: handle (as condis
hangup, modify and party take it), kind, call state, the far node and service,
the flowspecs in force, the number of parties, and counters: SDUs and bytes
sent, SDUs the call manager dropped because they did not conform to the
transmit flowspec (POLICED; known for the control plane's calls), SDUs and
bytes received. The parties of multipoint calls follow, each with its handle
(as condis party drop takes it), its destination and its state.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needControl(socket); err != nil {
				return err
			}
			if asJSON {
				return printCallsJSON(cmd.Context(), cmd.OutOrStdout(), socket)
			}
			list, err := node.ListNodeCalls(cmd.Context(), socket)
			if err != nil {
				return err
			}
			return printCalls(cmd.OutOrStdout(), list.Address, list.Calls)
		},
	}
	controlFlag(c, &socket)
	c.Flags().BoolVar(&asJSON, "json", false, "print the VCs as JSON (an array of objects) instead of the address and a table")
	return c
}

// printCallsJSON prints the node's VCs as an indented JSON array, each as
// it arrives: a node with 100,000 VCs is never held in memory as text.
func printCallsJSON(ctx context.Context, w io.Writer, socket string) error {
	bw := bufio.NewWriter(w)
	sep := "[\n  "
	err := node.EachCall(ctx, socket, func(ci node.CallInfo) error {
		b, err := json.MarshalIndent(ci, "  ", "  ")
		if err != nil {
			return err
		}
		bw.WriteString(sep)
		sep = ",\n  "
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		bw.Flush()
		return err
	}
	if sep == "[\n  " {
		bw.WriteString("[]\n")
	} else {
		bw.WriteString("\n]\n")
	}
	return bw.Flush()
}

// printCalls prints the node's address, when it has one, on a line of its
// own, then the table of its VCs.
func printCalls(w io.Writer, address string, calls []node.CallInfo) error {
	if address != "" {
		if _, err := fmt.Fprintf(w, "address %s\n", address); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "VC\tKIND\tSTATE\tPEER\tSERVICE\tTX\tRX\tPARTIES\tTX PKTS\tTX BYTES\tPOLICED\tRX PKTS\tRX BYTES")
	for _, c := range calls {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", c.Vc, c.Kind, c.State, orDash(c.Peer), orDash(c.Service),
			flowspec(c.Tx), flowspec(c.Rx), c.Parties, c.TxPackets, c.TxBytes, c.TxPoliced, c.RxPackets, c.RxBytes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The parties of multipoint calls, named as condis party drop takes them.
	for _, c := range calls {
		if len(c.Leaves) == 0 {
			continue
		}
		fmt.Fprintf(tw, "parties of %s:\n", c.Vc)
		for _, p := range c.Leaves {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", p.Party, orDash(p.Dest), p.State)
		}
	}
	return tw.Flush()
}

// flowspec renders a flowspec briefly: service type, then the rates and
// sizes that are specified ("best-effort peak=125000 sdu=1500").
func flowspec(f *node.Flowspec) string {
	if f == nil {
		return "-"
	}
	s := f.Service
	add := func(name string, v uint32) {
		if v != 0 {
			s += " " + name + "=" + strconv.FormatUint(uint64(v), 10)
		}
	}
	add("rate", f.Rate)
	add("peak", f.Peak)
	add("bucket", f.Bucket)
	add("sdu", f.MaxSDU)
	return s
}
