package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmgate/swarmgate/edge"
)

func newRoutesCmd() *cobra.Command {
	var admin, output string
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "Print a running edge's routing table (from its admin API)",
		Example: `  swarmgate routes --admin http://127.0.0.1:8080
  swarmgate routes --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			v, raw, err := fetchRoutes(ctx, admin)
			if err != nil {
				return err
			}
			if output == "json" {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			return printRoutes(cmd.OutOrStdout(), v)
		},
	}
	cmd.Flags().StringVar(&admin, "admin", "http://127.0.0.1:8080", "the edge's admin address")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func fetchRoutes(ctx context.Context, admin string) (edge.TableView, []byte, error) {
	var v edge.TableView
	if !strings.Contains(admin, "://") {
		admin = "http://" + admin
	}
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(admin, "/")+"/api/routes", nil)
	if err != nil {
		return v, nil, fmt.Errorf("routes: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return v, nil, fmt.Errorf("routes: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return v, nil, fmt.Errorf("routes: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return v, nil, fmt.Errorf("routes: %s answered %s", admin, resp.Status)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, nil, fmt.Errorf("routes: %w", err)
	}
	return v, raw, nil
}

func printRoutes(w io.Writer, v edge.TableView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ROUTE\tHOSTS\tPATH\tWEIGHT\tBALANCER\tENDPOINTS\n")
	for _, r := range v.Routes {
		hosts := strings.Join(r.Hosts, ",")
		if r.Default {
			hosts += " (default)"
		}
		path := r.Path
		if r.Strip {
			path += " (strip)"
		}
		var eps []string
		for _, e := range r.Endpoints {
			s := e.Addr
			if !e.Available {
				s += "(down)"
			}
			eps = append(eps, s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.Route, hosts, path, r.Weight, r.Balancer, strings.Join(eps, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range v.Errors {
		fmt.Fprintf(w, "skipped service %s: label %s=%q: %s\n", e.Service, e.Label, e.Value, e.Reason)
	}
	for _, e := range v.Rejected {
		fmt.Fprintf(w, "rejected: %s\n", e)
	}
	return nil
}
