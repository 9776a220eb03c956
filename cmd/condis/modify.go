package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/q2931"
)

func modifyCmd() *cobra.Command {
	var (
		socket string
		flow   flowFlags
	)
	c := &cobra.Command{
		Use:   "modify --control SOCK VC [--rate R] [--peak P] [--bucket B] [--max-sdu S]",
		Short: "Change the flowspec of the call on VC (NdisClModifyCallQoS) and print what was granted",
		Long: `modify asks the node to change the flowspec of its call on VC (as condis calls
names it: vc#12), whichever session holds it: each flag given replaces that
member of the call's flowspec, in both directions (a direction that carries
nothing keeps nothing), the rest stays. The node signals the change to the far
end (Q.2963.1 MODIFY REQUEST); once it is granted, modify prints the flowspecs
in force (rates are signalled in whole 48-octet cells), and the condis call
that holds the VC says so on stderr.

UNI 3.1 changes only the rates and the bucket of a point-to-point call: not its
service type or its SDU size, and not a multipoint call's. A change the node or
the far end refuses is printed in one line with the NDIS status and the Q.2931
cause, and the call keeps its flowspec exactly, for example:

  condis: modify vc#12 refused: NDIS_STATUS_CELLRATE_NOT_AVAILABLE (cause 37, user cell rate not available): ...

Values a UNI 3.1 traffic descriptor cannot carry are refused before the node is
asked, as condis call refuses them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needControl(socket); err != nil {
				return err
			}
			if flow.none() {
				return errors.New("modify: nothing to change: give --rate, --peak, --bucket or --max-sdu")
			}
			fs, err := flow.flowspec()
			if err != nil {
				return err
			}
			fs.Service = "" // the call's service type stays (UNI 3.1 cannot change it)
			tx, rx := fs, fs
			resp, err := node.ModifyQoS(cmd.Context(), socket, args[0], &tx, &rx)
			if err != nil {
				return modifyError(args[0], err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: granted transmit %s, receive %s\n", resp.Vc, flowspec(resp.Tx), flowspec(resp.Rx))
			return err
		},
	}
	controlFlag(c, &socket)
	flow.add(c, false)
	return c
}

// modifyError is the node's refusal of a modify, with a flowspec member
// the call manager cannot signal named by its flag, as condis call names
// it.
func modifyError(vc string, err error) error {
	var re *node.RequestError
	if !errors.As(err, &re) || re.Response.Fault == nil {
		return err
	}
	f := re.Response.Fault
	fe := &q2931.FlowspecError{Field: f.Field, Value: f.Value, Limit: f.Limit, Status: ndis.StatusInvalidData}
	return fmt.Errorf("modify %s: %s", vc, fe.Describe(flowspecFlag))
}
