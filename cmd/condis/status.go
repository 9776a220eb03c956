package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/node"
)

func statusCmd() *cobra.Command {
	var (
		socket string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "status --control SOCK [--json]",
		Short: "Show the node: name, ATM address, version, uptime, VCs by state, SAPs and contract violations",
		Long: `status shows what the node is and how it is doing: its name, ATM address and
version, how long it has been up, its VCs (how many in each call state), its
SAPs (the service each listens on and the client that registered it) and the
CoNDIS contract violations its mediator has reported since it started, by
rule. Our own drivers never cause one: any count is a bug to report.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needControl(socket); err != nil {
				return err
			}
			st, err := node.QueryStatus(cmd.Context(), socket)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			return printStatus(cmd.OutOrStdout(), st)
		},
	}
	controlFlag(c, &socket)
	c.Flags().BoolVar(&asJSON, "json", false, "print the status as a JSON object instead of text")
	return c
}

// printStatus prints a node's status, one "key  value" line per item.
func printStatus(w io.Writer, st node.NodeStatus) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "node\t%s\n", st.Node)
	fmt.Fprintf(tw, "address\t%s\n", orDash(st.Address))
	fmt.Fprintf(tw, "version\t%s\n", orDash(st.Version))
	fmt.Fprintf(tw, "topology\t%s\n", orDash(string(st.Topology)))
	up := time.Duration(st.Uptime * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(tw, "uptime\t%v, since %s\n", up, st.Started.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "vcs\t%s\n", counted(st.Vcs, st.VcStates, func(state string, n int) string {
		return strconv.Itoa(n) + " " + state
	}))
	saps := make([]string, len(st.Saps))
	for i, s := range st.Saps {
		what := s.Service
		if what == "" {
			what = s.Sap
		}
		who := s.Client
		if s.State != "REGISTERED" {
			who += ", " + s.State
		}
		saps[i] = what + " (" + who + ")"
	}
	if len(saps) == 0 {
		fmt.Fprintf(tw, "saps\t0\n")
	} else {
		fmt.Fprintf(tw, "saps\t%d: %s\n", len(saps), strings.Join(saps, ", "))
	}
	if st.ViolationTotal() == 0 {
		fmt.Fprintf(tw, "violations\tnone\n")
	} else {
		fmt.Fprintf(tw, "violations\t%s\n", counted(int(st.ViolationTotal()), st.Violations, func(rule string, n uint64) string {
			return rule + " " + strconv.FormatUint(n, 10)
		}))
	}
	if st.IP != nil {
		printIPStatus(tw, st.IP)
	}
	return tw.Flush()
}

// printIPStatus adds the lines of IP over condis: the device, the
// destination nodes, the packets, the calls and the drops.
func printIPStatus(tw io.Writer, ip *node.IPStatus) {
	fmt.Fprintf(tw, "ip\t%s %s, mtu %d\n", ip.Device, ip.Address, ip.MTU)
	peers := make([]string, len(ip.Peers))
	for i, p := range ip.Peers {
		peers[i] = p.Node + " " + p.Phase
		if len(p.VCs) > 0 {
			peers[i] += " (" + strings.Join(p.VCs, ", ") + ")"
		}
	}
	fmt.Fprintf(tw, "ip peers\t%s\n", orDash(strings.Join(peers, ", ")))
	s := ip.Stats
	fmt.Fprintf(tw, "ip packets\ttx %d (%d octets), rx %d (%d octets), %d ICMP errors sent\n", s.TxPackets, s.TxBytes, s.RxPackets, s.RxBytes, s.ICMPSent)
	fmt.Fprintf(tw, "ip calls\tout %d (%d connected, %d failed), in %d accepted, %d refused; %d closed (%d idle)\n",
		s.Calls, s.Connected, s.Refused, s.Accepted, s.Rejected, s.Closed, s.IdleClosed)
	var drops []string
	for _, d := range []struct {
		what string
		n    uint64
	}{{"queue full", s.QueueDrops}, {"no route", s.NoRoute}, {"spoofed", s.Spoofed}, {"too big", s.TooBig}, {"send error", s.SendErrors}, {"device", s.DeviceErrors}} {
		if d.n > 0 {
			drops = append(drops, fmt.Sprintf("%s %d", d.what, d.n))
		}
	}
	if len(drops) == 0 {
		drops = []string{"none"}
	}
	fmt.Fprintf(tw, "ip drops\t%s\n", strings.Join(drops, ", "))
}

// counted renders a total and its parts, the largest first (then by
// name): "12: 11 CONNECTED, 1 CLOSING"; just the total when there are no
// parts.
func counted[N int | uint64](total int, parts map[string]N, part func(string, N) string) string {
	s := strconv.Itoa(total)
	if len(parts) == 0 {
		return s
	}
	keys := slices.SortedFunc(maps.Keys(parts), func(a, b string) int {
		return cmp.Or(cmp.Compare(parts[b], parts[a]), strings.Compare(a, b))
	})
	items := make([]string, len(keys))
	for i, k := range keys {
		items[i] = part(k, parts[k])
	}
	return s + ": " + strings.Join(items, ", ")
}
