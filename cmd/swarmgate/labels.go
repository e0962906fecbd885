package main

import (
	"github.com/spf13/pflag"

	"github.com/swarmgate/swarmgate/discovery"
)

// labelsFlag adds --labels, the label dialects that a command reading
// service labels (edge, control, check) reads.
func labelsFlag(f *pflag.FlagSet, d *discovery.Dialects) {
	f.Var(d, "labels", "label dialects to read: a comma list of swarmgate, interlock (com.docker.lb.*) and traefik (traefik.* of traefik.enable=true services)")
}
