package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/node"
)

func peersCmd() *cobra.Command {
	var (
		socket string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "peers --control SOCK [--json]",
		Short: "List the node's peers: link state and since when, round-trip time, calls, signalling counts and the last error",
		Long: `peers lists every [[peer]] of the node and every node it has a link with or
has tried to reach: the state of the link (up, connecting, down) and how long
it has been in it, the QUIC round-trip time of a live link, the calls with the
peer (including calls kept for T309 while the link is down), the Q.2931
messages received and sent since the node started, the peer's UDP and ATM
addresses, and the last thing that went wrong: why the link went down, or why
the last dial failed (a certificate from another CA says so).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needControl(socket); err != nil {
				return err
			}
			peers, err := node.QueryPeers(cmd.Context(), socket)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), peers)
			}
			return printPeers(cmd.OutOrStdout(), time.Now(), peers)
		},
	}
	controlFlag(c, &socket)
	c.Flags().BoolVar(&asJSON, "json", false, "print the peers as JSON (an array of objects) instead of a table")
	return c
}

// printJSON prints v as indented JSON and a newline.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// printPeers prints the peers as a table; times are shown as ages at now.
func printPeers(w io.Writer, now time.Time, peers []node.PeerInfo) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tSTATE\tSINCE\tRTT\tCALLS\tMSGS IN\tMSGS OUT\tADDRESS\tATM ADDRESS\tLAST ERROR")
	for _, p := range peers {
		name := p.Name
		if !p.Configured {
			name += " (not configured)"
		}
		lastErr := "-"
		if p.LastError != "" {
			lastErr = p.LastError
			if !p.LastErrorAt.IsZero() {
				lastErr += " (" + ago(now, p.LastErrorAt) + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", name, p.State, ago(now, p.Since), rtt(p.RTTMs),
			p.Calls, p.MessagesIn, p.MessagesOut, orDash(p.Address), orDash(p.ATMAddress), lastErr)
	}
	return tw.Flush()
}

// ago says how long before now t was, briefly ("4s ago", "3m12s ago",
// "2h5m ago", "3d4h ago"); "-" for the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds ago", d/time.Minute, d%time.Minute/time.Second)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm ago", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%dd%dh ago", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}

// rtt renders a round-trip time in milliseconds with two significant
// digits or more ("0.42ms", "3.1ms", "120ms"); "-" for none.
func rtt(ms float64) string {
	switch {
	case ms <= 0:
		return "-"
	case ms < 1:
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
}
