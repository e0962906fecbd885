package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Set by the linker: -X main.version=... -X main.commit=...
var (
	version = "dev"
	commit  = "none"
)

// logOptions are the logging flags every command shares.
type logOptions struct {
	level  string
	format string
}

func newRootCmd() *cobra.Command {
	var logs logOptions
	root := &cobra.Command{
		Use:           "swarmgate",
		Short:         "Ingress router for Docker Swarm: routes from service labels, no reloads",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return flagsFromEnv(cmd.Flags())
		},
	}
	root.PersistentFlags().StringVar(&logs.level, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&logs.format, "log-format", "json", "log format: json or console")
	check := newCheckCmd(&logs)
	// check's --docker is a switch; SWARMGATE_DOCKER is the edge's address.
	check.Flags().SetAnnotation("docker", noEnv, []string{"true"})
	root.AddCommand(
		newEdgeCmd(&logs),
		newControlCmd(&logs),
		newSocketProxyCmd(&logs),
		check,
		newRoutesCmd(),
		newRolloutCmd(),
		newVersionCmd(),
	)
	return root
}

// noEnv annotates a flag that does not read SWARMGATE_<FLAG>.
const noEnv = "swarmgate/no-env"

// flagsFromEnv sets every flag the command line left unset from its
// SWARMGATE_<FLAG> environment variable (upper case, "-" as "_").
func flagsFromEnv(flags *pflag.FlagSet) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Annotations[noEnv] != nil {
			return
		}
		name := "SWARMGATE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if serr := flags.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

// newLogger builds the process logger. Every package receives it (or a child)
// explicitly; nothing logs through a global.
func newLogger(o *logOptions) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(o.level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	var cfg zap.Config
	switch o.format {
	case "json":
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.TimeKey = "ts"
		cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	case "console":
		cfg = zap.NewDevelopmentConfig()
	default:
		return nil, fmt.Errorf("--log-format: want json or console, got %q", o.format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil // access logs must not be sampled away
	cfg.DisableStacktrace = true
	return cfg.Build()
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "swarmgate %s (commit %s, %s %s/%s)\n",
				version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
