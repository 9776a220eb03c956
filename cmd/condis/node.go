package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/node"
)

func nodeCmd() *cobra.Command {
	var (
		config  string
		verbose bool
	)
	c := &cobra.Command{
		Use:   "node --config FILE",
		Short: "Run a condis node: the mediator, the Q.2931 call manager over QUIC, and the control socket",
		Long: `node runs one condis node as configured in FILE (see the node package for
the format): it listens for its peers over QUIC with mutual TLS, serves the
control socket that condis listen, call and calls use, and runs until SIGTERM
or SIGINT, when it releases every call (peers see normal clearing) and exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if config == "" {
				return errors.New("node: --config FILE is required")
			}
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelInfo
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runNode(ctx, config, log)
		},
	}
	c.Flags().StringVar(&config, "config", "", "the node's TOML configuration file")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "log links, calls and control sessions")
	return c
}

// runNode runs the node configured in path until ctx is done.
func runNode(ctx context.Context, path string, log *slog.Logger) error {
	cfg, err := node.Load(path)
	if err != nil {
		return err
	}
	n, err := node.Start(cfg, node.StartOptions{Logger: log})
	if err != nil {
		return err
	}
	known := func(name string) bool { _, ok := cfg.Peer(name); return ok }
	ctl, err := node.NewControl(ctx, node.MCMCallManager{MCM: n.MCM, Known: known}, node.Options{Name: "control", Logger: log})
	if err != nil {
		n.Close(context.Background())
		return fmt.Errorf("node %s: control plane: %w", cfg.Name, err)
	}
	ln, err := node.ListenControl(cfg.Control)
	if err != nil {
		ctl.Shutdown(context.Background())
		n.Close(context.Background())
		return fmt.Errorf("node %s: control socket %s: %w", cfg.Name, cfg.Control, err)
	}
	served := make(chan error, 1)
	go func() { served <- ctl.Serve(ln) }()
	log.Info("node running", "node", cfg.Name, "control", cfg.Control)
	select {
	case <-ctx.Done():
	case err := <-served:
		if err != nil {
			log.Warn("control socket stopped", "err", err)
		}
	}
	// Release every call with normal clearing before the transport closes.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(ctl.Shutdown(sctx), n.Close(sctx))
	<-served
	os.Remove(cfg.Control)
	return err
}
