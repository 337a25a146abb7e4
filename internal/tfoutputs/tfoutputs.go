// Package tfoutputs reads fleetd's infrastructure settings from the outputs
// of the Terraform module (terraform/modules/kafka-fleet) through
// terraform-exec, so that no id is copied by hand into fleetd's config.
package tfoutputs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-exec/tfexec"
)

// Outputs are the module outputs fleetd uses.
type Outputs struct {
	Cluster          string `json:"cluster"`
	LaunchTemplateID string `json:"launch_template_id"`
	// ControllerLaunchTemplateID launches KRaft controllers (optional).
	ControllerLaunchTemplateID string            `json:"controller_launch_template_id"`
	SubnetsByAZ                map[string]string `json:"subnets_by_az"`
	EventsQueueURL             string            `json:"events_queue_url"`
	LeaseTable                 string            `json:"lease_table"`
	AMIOwners                  []string          `json:"ami_owners"`
	AMITags                    map[string]string `json:"ami_tags"`
	ClusterTag                 string            `json:"cluster_tag"`
	NodeIDTag                  string            `json:"node_id_tag"`
}

// Required are the outputs without which fleetd cannot run on EC2.
var Required = []string{"launch_template_id", "subnets_by_az", "events_queue_url", "lease_table", "ami_owners", "ami_tags"}

// Read runs `terraform output -json` in dir with the terraform binary at
// execPath and decodes the outputs. Missing required outputs are one error
// naming them all.
func Read(ctx context.Context, execPath, dir string) (Outputs, error) {
	tf, err := tfexec.NewTerraform(dir, execPath)
	if err != nil {
		return Outputs{}, fmt.Errorf("terraform in %s: %w", dir, err)
	}
	raw, err := tf.Output(ctx)
	if err != nil {
		return Outputs{}, fmt.Errorf("terraform output in %s: %w (has the module been applied there?)", dir, err)
	}
	values := map[string]json.RawMessage{}
	var missing []string
	for _, name := range Required {
		if _, ok := raw[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Outputs{}, fmt.Errorf("terraform outputs in %s lack %s: is it a deployment of terraform/modules/kafka-fleet (output them from your root module)?", dir, strings.Join(missing, ", "))
	}
	for name, meta := range raw {
		values[name] = meta.Value
	}
	b, _ := json.Marshal(values)
	var out Outputs
	if err := json.Unmarshal(b, &out); err != nil {
		return Outputs{}, fmt.Errorf("terraform outputs in %s: %w", dir, err)
	}
	return out, nil
}
