package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/internal/heaptrim"
	"github.com/condis-project/condis/internal/logtext"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/node"
)

func nodeCmd() *cobra.Command {
	var (
		config        string
		logs          logFlags
		gcFloor       int
		procsFlag     string
		prof          profiling
		traceMediator bool
	)
	c := &cobra.Command{
		Use:   "node --config FILE",
		Short: "Run a condis node: the mediator, the Q.2931 call manager over QUIC, and the control socket",
		Long: `node runs one condis node as configured in FILE: it listens for its peers
over QUIC with mutual TLS, serves the control socket that condis listen, call
and calls use, and runs until SIGTERM or SIGINT, when it releases every call
(peers see normal clearing) and exits 0.

It logs on stderr, as key=value text or (--log-format json) one JSON object a
line. At info (the default): the node up, with its addresses and version;
each link to a peer up, and down with the reason; every refused TLS handshake,
with the remote address and the reason in words (at most one line per address
and reason every 10 s); and every call offered, connected, refused, failed and
released, with peer, service, VC and the Q.2931 cause. That is a few lines per
call: on a node making thousands of calls a second, --log-level warn keeps
only the problems.

` + node.ConfigReference(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if config == "" {
				return errors.New("node: --config FILE is required")
			}
			logs.levelSet = cmd.Flags().Changed("log-level")
			out := newLogWriter(cmd.ErrOrStderr()) // lines in batches: a busy node logs a few per call
			defer out.Close()
			log, err := logs.logger(out)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if gcFloor < 0 {
				return errors.New("node: --gc-floor must not be negative")
			}
			ps, err := parseProcs(procsFlag, cmd.Flags().Changed("procs"))
			if err != nil {
				return err
			}
			floor := heapFloor(gcFloor << 20)
			defer runtime.KeepAlive(floor)
			end, err := prof.start(config)
			if err != nil {
				return err
			}
			defer ps.run(ctx, log)()
			return errors.Join(runNode(ctx, config, log, node.StartOptions{TraceMediator: traceMediator}), end())
		},
	}
	c.Flags().StringVar(&config, "config", "", "the node's TOML configuration file")
	c.Flags().StringVar(&logs.level, "log-level", "info", "what to log: debug, info (the node, its links, every call, refused handshakes), warn or error")
	c.Flags().StringVar(&logs.format, "log-format", "text", "how to log, on stderr: text (key=value) or json (one object a line)")
	c.Flags().BoolVarP(&logs.verbose, "verbose", "v", false, "log at debug level (--log-level debug)")
	c.Flags().BoolVar(&traceMediator, "trace-mediator", false, "hand the mediator's events to condis trace sessions, so that --ladder shows the CoNDIS layer (each request then costs a lock and an allocation)")
	c.Flags().IntVar(&gcFloor, "gc-floor", 32, "MiB the Go heap target never goes below (fewer garbage collections while few calls are up; 0: none)")
	c.Flags().StringVar(&procsFlag, "procs", "auto", "CPUs the node's Go scheduler runs on (GOMAXPROCS): auto (one while one is enough, more while the node keeps them busy and the host has idle CPUs) or a number; without --procs, a GOMAXPROCS environment variable fixes it")
	// Profiling, for the performance work (design §7): hidden, since
	// operators do not need them.
	c.Flags().StringVar(&prof.cpu, "cpuprofile", "", "write a CPU profile to this file until the node exits")
	c.Flags().StringVar(&prof.trace, "trace", "", "write an execution trace (go tool trace) to this file until the node exits")
	c.Flags().MarkHidden("cpuprofile")
	c.Flags().MarkHidden("trace")
	return c
}

// logFlags are the node's logging flags: --log-level, --log-format and -v
// (--log-level debug).
type logFlags struct {
	level, format string
	verbose       bool
	levelSet      bool // --log-level was given
}

// logger is the node's logger on w; a bad value is a one-line error naming
// the values allowed.
func (f logFlags) logger(w io.Writer) (*slog.Logger, error) {
	level := f.level
	if f.verbose {
		if f.levelSet && !strings.EqualFold(level, "debug") {
			return nil, fmt.Errorf("node: -v is --log-level debug; give one or the other, not -v with --log-level %s", level)
		}
		level = "debug"
	}
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "info":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("node: --log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(f.format) {
	case "text":
		h, err := logtext.New(w, opts) // slog's text format, faster: a busy node logs a few lines per call
		if err != nil {
			return nil, err
		}
		return slog.New(h), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("node: --log-format %q: want text or json", f.format)
}

// heapFloor returns an allocation of n octets that holds no pointers and
// is never written: kept alive, it raises the garbage collector's heap
// target by n without costing resident memory (its pages are never
// touched) or marking work. A node's live heap is small until many calls
// are up, so without a floor it collects every few MiB allocated, and at
// tens of thousands of calls per second those collections' fixed costs
// were a fifth of its CPU. With many calls up the floor is a small share
// of the heap and changes little.
func heapFloor(n int) []byte {
	if n == 0 {
		return nil
	}
	return make([]byte, n)
}

// trimHeap runs a garbage collection, until the returned stop is called,
// whenever the node has just let go of many calls (package heaptrim), and
// says so at info.
func trimHeap(ctx context.Context, m *ndis.Mediator, log *slog.Logger) (stop func()) {
	return heaptrim.Watcher{
		Every: time.Second,
		VCs:   func() int { return m.Live().Vcs },
		Collect: func(vcs int) {
			start := time.Now()
			runtime.GC()
			log.Info("many calls released: heap collected", "vcs", vcs, "took", time.Since(start).Round(time.Millisecond))
		},
	}.Start(ctx)
}

// tightenRunway lets the Go collector's percent follow the live heap
// (package heaptrim's Runway: 50 while more than 512 MiB is live, 100
// again at half of that), until the returned stop is called, and says so
// at info. A GOGC the operator set is left alone.
func tightenRunway(ctx context.Context, log *slog.Logger) (stop func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	return heaptrim.Runway{
		Every: time.Second,
		Set: func(from, to int, live uint64) {
			debug.SetGCPercent(to)
			log.Info("live heap crossed its mark: collector's percent changed", "from", from, "to", to, "live_mib", live>>20)
		},
	}.Start(ctx)
}

// profileEnv names a directory: every `condis node` started with it set
// writes NAME.cpu.pprof, NAME.trace and NAME.allocs.pprof (what it
// allocated, sampled every memProfileRate octets) there (NAME is the
// config file's base name), so a benchmark's node processes can be
// profiled without changing how they are started:
//
//	CONDIS_NODE_PROFILE=/tmp/prof go test -run '^$' -bench RemoteCall ./cmd/condis
const profileEnv = "CONDIS_NODE_PROFILE"

// memProfileRate is the allocation profile's sampling interval under
// profileEnv: finer than the runtime's 512 KiB, since a call allocates
// about a kilobyte.
const memProfileRate = 16 << 10

// profiling is the node's optional CPU profile, execution trace and
// allocation profile.
type profiling struct{ cpu, trace, allocs string }

// start begins what was asked for; end stops it and closes the files.
func (p profiling) start(config string) (end func() error, err error) {
	if dir := os.Getenv(profileEnv); dir != "" {
		base := strings.TrimSuffix(filepath.Base(config), filepath.Ext(config))
		if p.cpu == "" {
			p.cpu = filepath.Join(dir, base+".cpu.pprof")
		}
		if p.trace == "" {
			p.trace = filepath.Join(dir, base+".trace")
		}
		p.allocs = filepath.Join(dir, base+".allocs.pprof")
	}
	var files []*os.File
	var stops []func()
	end = func() error {
		for _, s := range stops {
			s()
		}
		var errs []error
		for _, f := range files {
			errs = append(errs, f.Close())
		}
		return errors.Join(errs...)
	}
	if p.cpu != "" {
		f, err := os.Create(p.cpu)
		if err != nil {
			return nil, errors.Join(err, end())
		}
		files = append(files, f)
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, errors.Join(err, end())
		}
		stops = append(stops, pprof.StopCPUProfile)
	}
	if p.trace != "" {
		f, err := os.Create(p.trace)
		if err != nil {
			return nil, errors.Join(err, end())
		}
		files = append(files, f)
		if err := trace.Start(f); err != nil {
			return nil, errors.Join(err, end())
		}
		stops = append(stops, trace.Stop)
	}
	if p.allocs != "" {
		f, err := os.Create(p.allocs)
		if err != nil {
			return nil, errors.Join(err, end())
		}
		files = append(files, f)
		runtime.MemProfileRate = memProfileRate
		stops = append(stops, func() { pprof.Lookup("allocs").WriteTo(f, 0) })
	}
	return end, nil
}

// runNode runs the node configured in path until ctx is done.
func runNode(ctx context.Context, path string, log *slog.Logger, opts node.StartOptions) error {
	cfg, err := node.Load(path)
	if err != nil {
		return err
	}
	opts.Logger = log
	n, err := node.Start(cfg, opts)
	if err != nil {
		return err
	}
	ctl, err := node.NewControl(ctx, n.CallManager(), node.Options{Name: "control", Logger: log})
	if err != nil {
		n.Close(context.Background())
		return fmt.Errorf("node %s: %w", cfg.Name, err) // "control: ..."
	}
	ln, err := node.ListenControl(cfg.Control)
	if err != nil {
		ctl.Shutdown(context.Background())
		n.Close(context.Background())
		return fmt.Errorf("node %s: %w", cfg.Name, err) // "control socket PATH: ..."
	}
	served := make(chan error, 1)
	go func() { served <- ctl.Serve(ln) }()
	stopTrim := trimHeap(ctx, n.Mediator, log)
	stopRunway := tightenRunway(ctx, log)
	log.Info("node running", "node", cfg.Name, "control", cfg.Control)
	select {
	case <-ctx.Done():
	case err := <-served:
		if err != nil {
			log.Warn("control socket stopped", "err", err)
		}
	}
	stopTrim() // the calls released on the way out need no collection
	stopRunway()
	// Release every call with normal clearing before the transport closes.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(ctl.Shutdown(sctx), n.Close(sctx))
	<-served
	os.Remove(cfg.Control)
	log.Info("node down", "node", cfg.Name)
	return err
}
