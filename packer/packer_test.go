// Package packer_test checks the broker AMI's parts that can be checked
// without building an AMI: the tags the template writes (fleetd's default
// AMI selector must match them) and the boot-time disk script's choice of
// devices, fed recorded lsblk output.
package packer_test

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/fleetd/fleetd/internal/config"
	"github.com/fleetd/fleetd/internal/ec2mirror"
)

func TestTemplateWritesTheTagsFleetdSelects(t *testing.T) {
	file, diags := hclparse.NewParser().ParseHCLFile("kafka-broker.pkr.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var tags map[string]string
	for _, b := range file.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "locals" {
			continue
		}
		if a, ok := b.Body.Attributes["ami_tags"]; ok {
			v, d := a.Expr.Value(nil)
			if d.HasErrors() {
				t.Fatal(d)
			}
			tags = map[string]string{}
			for k, val := range v.AsValueMap() {
				tags[k] = val.AsString()
			}
		}
	}
	if !maps.Equal(config.DefaultAMITags, ec2mirror.ImageTags) {
		t.Fatalf("the test harness seeds AMIs with %v, fleetd selects %v", ec2mirror.ImageTags, config.DefaultAMITags)
	}
	if !maps.Equal(tags, config.DefaultAMITags) {
		t.Fatalf("template's local.ami_tags %v, fleetd's config.DefaultAMITags %v: keep them equal", tags, config.DefaultAMITags)
	}
	raw, _ := os.ReadFile("kafka-broker.pkr.hcl")
	if !strings.Contains(string(raw), "tags = merge(local.ami_tags,") {
		t.Fatal("the amazon-ebs source does not tag the AMI with local.ami_tags")
	}
}

// The AMI ships the Kafka version fleetd's own tests run against.
func TestTemplateKafkaVersionIsTheTestedOne(t *testing.T) {
	file, diags := hclparse.NewParser().ParseHCLFile("kafka-broker.pkr.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var def string
	for _, b := range file.Body.(*hclsyntax.Body).Blocks {
		if b.Type == "variable" && len(b.Labels) == 1 && b.Labels[0] == "kafka_version" {
			v, d := b.Body.Attributes["default"].Expr.Value(nil)
			if d.HasErrors() {
				t.Fatal(d)
			}
			def = v.AsString()
		}
	}
	lib, err := os.ReadFile("../scripts/lib.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^FLEETD_DEFAULT_KAFKA_VERSION="([^"]+)"`).FindSubmatch(lib)
	if m == nil {
		t.Fatal("scripts/lib.sh no longer sets FLEETD_DEFAULT_KAFKA_VERSION")
	}
	if def != string(m[1]) {
		t.Fatalf("the template's kafka_version default is %q, fleetd's tests run %q (scripts/lib.sh): keep them equal", def, m[1])
	}
}

func TestDiskScriptChoosesTheInstanceStore(t *testing.T) {
	for fixture, want := range map[string]string{
		"lsblk-im4gn.4xlarge.txt":  "plan: single device /dev/nvme1n1\nplan: mount /dev/nvme1n1 on /var/lib/kafka\n",
		"lsblk-im4gn.16xlarge.txt": "plan: raid0 /dev/md0 from /dev/nvme1n1 /dev/nvme2n1 /dev/nvme3n1 /dev/nvme4n1\nplan: mount /dev/md0 on /var/lib/kafka\n",
		"lsblk-after-reboot.txt":   "plan: use existing array /dev/md0\nplan: mount /dev/md0 on /var/lib/kafka\n",
		// udev assembles the array at boot under a name of its own.
		"lsblk-after-reboot-md127.txt": "plan: use existing array /dev/md127\nplan: mount /dev/md127 on /var/lib/kafka\n",
	} {
		out, err := exec.Command("bash", "files/bin/kafka-disks", "--plan", "testdata/"+fixture).CombinedOutput()
		if err != nil || string(out) != want {
			t.Errorf("%s: %v\n%s\nwant\n%s", fixture, err, out, want)
		}
	}
	out, err := exec.Command("bash", "files/bin/kafka-disks", "--plan", "testdata/lsblk-ebs-only.txt").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no instance-store NVMe device") {
		t.Errorf("EBS only: %v %s, want a refusal (the root volume is never touched)", err, out)
	}
}

// FuzzDiskListing: whatever lsblk's listing holds, kafka-disks plans only
// kernel-named devices under /dev that the listing calls instance storage
// (or an md array), never anything else.
func FuzzDiskListing(f *testing.F) {
	for _, fixture := range []string{"lsblk-im4gn.4xlarge.txt", "lsblk-im4gn.16xlarge.txt", "lsblk-after-reboot-md127.txt", "lsblk-ebs-only.txt"} {
		b, err := os.ReadFile("testdata/" + fixture)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(`NAME="../../etc" MODEL="Amazon EC2 NVMe Instance Storage" TYPE="disk" MOUNTPOINT=""` + "\n")
	f.Add(`NAME="nvme1n1 /dev/sda" MODEL="Amazon EC2 NVMe Instance Storage" TYPE="disk" MOUNTPOINT=""` + "\n")
	f.Fuzz(func(t *testing.T, listing string) {
		file := filepath.Join(t.TempDir(), "lsblk")
		if err := os.WriteFile(file, []byte(listing), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "files/bin/kafka-disks", "--plan", file)
		cmd.WaitDelay = time.Second // a child still holding stdout must not outlive the bound
		out, err := cmd.Output()
		if ctx.Err() != nil {
			t.Fatalf("kafka-disks did not finish within 10 s on listing %q", listing)
		}
		if err != nil {
			return // refused: nothing would be touched
		}
		for _, dev := range regexp.MustCompile(`/dev/\S+`).FindAllString(string(out), -1) {
			name := strings.TrimPrefix(dev, "/dev/")
			if !regexp.MustCompile(`^[a-z0-9]+$`).MatchString(name) {
				t.Fatalf("planned %q from listing %q", dev, listing)
			}
			if name != "md0" && !strings.Contains(listing, `NAME="`+name+`"`) {
				t.Fatalf("planned %s, which the listing does not name:\n%s", dev, listing)
			}
		}
	})
}
