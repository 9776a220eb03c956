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
	return tw.Flush()
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
