package ec2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/fleetd/fleetd/internal/replace"
)

// Tag keys fleetd reads and writes. The cluster and node id keys are
// configurable (Options.Tags); the rest are fleetd's own.
const (
	DefaultClusterTag = "fleetd:cluster"
	DefaultNodeIDTag  = "fleetd:node-id"
	// TagReplacement names the replacement an instance belongs to (the new
	// broker) or is being replaced by (the old one).
	TagReplacement = "fleetd:replacement"
	// TagStep is the replacement's last recorded step, for a fleetd on
	// another host to see where it stands.
	TagStep = "fleetd:step"
	// TagRole says what the instance runs: broker (also when absent, as on
	// instances tagged before roles were) or controller. The AMI reads it at
	// boot (kafka-broker-config); fleetd routes a controller's events to the
	// controller workflow.
	TagRole = "fleetd:role"
	// TagLaunchToken makes a launch idempotent: before launching, fleetd
	// looks for an instance carrying the token (EC2's own ClientToken
	// protects as well; moto does not implement it).
	TagLaunchToken = "fleetd:launch-token"
)

// API is the part of the EC2 client the provider uses.
type API interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, opts ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	RunInstances(ctx context.Context, in *ec2.RunInstancesInput, opts ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	StopInstances(ctx context.Context, in *ec2.StopInstancesInput, opts ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, opts ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, opts ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DescribeInstanceStatus(ctx context.Context, in *ec2.DescribeInstanceStatusInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
}

// Options say which instances are the cluster's brokers and how new ones
// are launched.
type Options struct {
	// Cluster is the value of the cluster tag.
	Cluster string
	// ClusterTag and NodeIDTag are the tag keys (DefaultClusterTag,
	// DefaultNodeIDTag).
	ClusterTag, NodeIDTag string
	// LaunchTemplate is a launch template id (lt-...) or name; Version is
	// "$Default" unless set.
	LaunchTemplate, LaunchTemplateVersion string
	// InstanceType overrides the template's (default im4gn.4xlarge).
	InstanceType string
	// ImageOwners and ImageTags select the AMI: the newest available image
	// owned by one of ImageOwners (default "self") carrying every tag.
	ImageOwners []string
	ImageTags   map[string]string
	// SubnetsByAZ places a replacement whose old instance's subnet is
	// unknown (from the Terraform module's outputs).
	SubnetsByAZ map[string]string
	// ControllerLaunchTemplate launches KRaft controllers (process.roles
	// controller); empty: controllers cannot be replaced. Their instance
	// type is the template's unless ControllerInstanceType is set.
	ControllerLaunchTemplate string
	ControllerInstanceType   string
	// ControllerPort is the controllers' listener port (default 9093): a
	// controller's endpoint is its private address and this port.
	ControllerPort int
}

// Provider is replace.Provider on EC2.
type Provider struct {
	API  API
	Opts Options

	images imageDates
}

// imageDates caches AMIs' creation times by id. An AMI's never changes, so
// each is asked for once; one that DescribeImages does not return
// (deregistered, or shared no longer) is asked for again after
// imageRecheck.
type imageDates struct {
	mu    sync.Mutex
	known map[string]imageDate
}

type imageDate struct {
	created time.Time // zero: not found when checked
	checked time.Time
}

const imageRecheck = 10 * time.Minute

// NewProvider applies defaults to o.
func NewProvider(api API, o Options) (*Provider, error) {
	if o.Cluster == "" {
		return nil, errors.New("ec2 provider: the cluster name is required (the value of the cluster tag)")
	}
	if o.LaunchTemplate == "" {
		return nil, errors.New("ec2.launch_template: required (the Terraform module outputs it)")
	}
	if o.ClusterTag == "" {
		o.ClusterTag = DefaultClusterTag
	}
	if o.NodeIDTag == "" {
		o.NodeIDTag = DefaultNodeIDTag
	}
	if o.LaunchTemplateVersion == "" {
		o.LaunchTemplateVersion = "$Default"
	}
	if o.InstanceType == "" {
		o.InstanceType = "im4gn.4xlarge"
	}
	if len(o.ImageOwners) == 0 {
		o.ImageOwners = []string{"self"}
	}
	if o.ControllerPort == 0 {
		o.ControllerPort = 9093
	}
	return &Provider{API: api, Opts: o}, nil
}

func (p *Provider) clusterFilter() types.Filter {
	return types.Filter{Name: aws.String("tag:" + p.Opts.ClusterTag), Values: []string{p.Opts.Cluster}}
}

func tagsOf(ts []types.Tag) map[string]string {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// toInstance translates an EC2 instance; ok is false for one without a
// valid node id tag or with a role tag that is neither broker nor
// controller (not a node fleetd manages: a tag is data anyone with
// ec2:CreateTags writes, never trusted to mean more).
func (p *Provider) toInstance(in types.Instance) (replace.Instance, bool) {
	tags := tagsOf(in.Tags)
	id, err := strconv.ParseInt(tags[p.Opts.NodeIDTag], 10, 32)
	if err != nil || id < 0 || tags[p.Opts.ClusterTag] != p.Opts.Cluster {
		return replace.Instance{}, false
	}
	role := replace.Role(tags[TagRole])
	switch role {
	case "", replace.RoleBroker:
		role = replace.RoleBroker
	case replace.RoleController:
	default:
		return replace.Instance{}, false
	}
	out := replace.Instance{
		ID: aws.ToString(in.InstanceId), NodeID: int32(id), Role: role, Image: aws.ToString(in.ImageId), Type: string(in.InstanceType),
		LaunchedAt: aws.ToTime(in.LaunchTime), Tags: tags, Subnet: aws.ToString(in.SubnetId),
	}
	if ip := aws.ToString(in.PrivateIpAddress); role == replace.RoleController && ip != "" {
		out.Endpoint = net.JoinHostPort(ip, strconv.Itoa(p.Opts.ControllerPort))
	}
	if in.Placement != nil {
		out.Zone = aws.ToString(in.Placement.AvailabilityZone)
	}
	if in.State != nil {
		out.State = replace.InstanceState(in.State.Name)
	}
	return out, true
}

// describe lists the cluster's instances matching extra filters.
func (p *Provider) describe(ctx context.Context, extra ...types.Filter) ([]replace.Instance, error) {
	in := &ec2.DescribeInstancesInput{Filters: append([]types.Filter{p.clusterFilter()}, extra...)}
	var out []replace.Instance
	pg := ec2.NewDescribeInstancesPaginator(p.API, in)
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances of cluster %s: %w", p.Opts.Cluster, err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				if inst, ok := p.toInstance(i); ok {
					out = append(out, inst)
				}
			}
		}
	}
	return out, nil
}

// Instances lists the cluster's brokers and controllers that are not
// terminated.
func (p *Provider) Instances(ctx context.Context) ([]replace.Instance, error) {
	all, err := p.describe(ctx, types.Filter{Name: aws.String("instance-state-name"),
		Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b replace.Instance) int { return a.LaunchedAt.Compare(b.LaunchedAt) })
	p.fillImageCreated(ctx, all)
	return all, nil
}

// fillImageCreated sets each instance's ImageCreated (the status page shows
// the AMI's age). It asks EC2 only for AMIs not seen
// before, in one call filtered by id (a filter, not ImageIds, so one
// deregistered AMI does not fail the rest). A failed call leaves the dates
// unknown and is tried again on the next listing: an AMI's age is shown,
// never needed.
func (p *Provider) fillImageCreated(ctx context.Context, all []replace.Instance) {
	p.images.mu.Lock()
	defer p.images.mu.Unlock()
	if p.images.known == nil {
		p.images.known = map[string]imageDate{}
	}
	now := time.Now()
	var ask []string
	for _, in := range all {
		d, ok := p.images.known[in.Image]
		if in.Image != "" && (!ok || d.created.IsZero() && now.Sub(d.checked) >= imageRecheck) && !slices.Contains(ask, in.Image) {
			ask = append(ask, in.Image)
		}
	}
	if len(ask) > 0 {
		out, err := p.API.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []types.Filter{{Name: aws.String("image-id"), Values: ask}}})
		if err == nil {
			for _, id := range ask {
				p.images.known[id] = imageDate{checked: now}
			}
			for _, im := range out.Images {
				if t, err := time.Parse(time.RFC3339, aws.ToString(im.CreationDate)); err == nil {
					p.images.known[aws.ToString(im.ImageId)] = imageDate{created: t, checked: now}
				}
			}
		}
	}
	for i := range all {
		all[i].ImageCreated = p.images.known[all[i].Image].created
	}
}

// NewestImage returns the newest available AMI the selector matches.
func (p *Provider) NewestImage(ctx context.Context) (types.Image, error) {
	in := &ec2.DescribeImagesInput{Owners: p.Opts.ImageOwners, Filters: []types.Filter{{Name: aws.String("state"), Values: []string{"available"}}}}
	keys := make([]string, 0, len(p.Opts.ImageTags))
	for k := range p.Opts.ImageTags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		in.Filters = append(in.Filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{p.Opts.ImageTags[k]}})
	}
	var best types.Image
	pg := ec2.NewDescribeImagesPaginator(p.API, in)
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return types.Image{}, fmt.Errorf("describe images: %w", err)
		}
		for _, im := range page.Images {
			// CreationDate is RFC 3339, so strings compare as times.
			if aws.ToString(im.CreationDate) > aws.ToString(best.CreationDate) {
				best = im
			}
		}
	}
	if best.ImageId == nil {
		return types.Image{}, fmt.Errorf("no available AMI owned by %v with tags %v: has CI built one (packer/)? are ec2.ami_owners and ec2.ami_tags (the Terraform module's ami_owners and ami_tags outputs) right?", p.Opts.ImageOwners, p.Opts.ImageTags)
	}
	return best, nil
}

// Launch starts a node like req.Like (same role; same subnet, so the same
// AZ) from the newest AMI: a broker from the launch template, a controller
// from the controller launch template. It is idempotent by req.Token: an
// instance already carrying the token is returned instead of launching a
// second one.
func (p *Provider) Launch(ctx context.Context, req replace.LaunchRequest) (replace.Instance, error) {
	if req.Token == "" {
		return replace.Instance{}, errors.New("launch: a token is required for an idempotent launch")
	}
	existing, err := p.describe(ctx, types.Filter{Name: aws.String("tag:" + TagLaunchToken), Values: []string{req.Token}})
	if err != nil {
		return replace.Instance{}, err
	}
	for _, in := range existing {
		if in.State != replace.StateTerminated {
			return in, nil
		}
	}
	subnet := req.Like.Subnet
	if subnet == "" {
		subnet = p.Opts.SubnetsByAZ[req.Like.Zone]
	}
	if subnet == "" {
		return replace.Instance{}, fmt.Errorf("launch like %s: its subnet is unknown and ec2.subnets_by_az has none for zone %q, so the AZ cannot be kept", req.Like.ID, req.Like.Zone)
	}
	role, template, instanceType := req.Role(), p.Opts.LaunchTemplate, p.Opts.InstanceType
	if role == replace.RoleController {
		if p.Opts.ControllerLaunchTemplate == "" {
			return replace.Instance{}, errors.New("launch a controller: ec2.controller_launch_template is not set (the Terraform module's controller_launch_template_id output)")
		}
		template, instanceType = p.Opts.ControllerLaunchTemplate, p.Opts.ControllerInstanceType
	}
	img, err := p.NewestImage(ctx)
	if err != nil {
		return replace.Instance{}, err
	}
	tags := []types.Tag{
		{Key: aws.String(p.Opts.ClusterTag), Value: aws.String(p.Opts.Cluster)},
		{Key: aws.String(p.Opts.NodeIDTag), Value: aws.String(strconv.Itoa(int(req.NodeID)))},
		{Key: aws.String(TagReplacement), Value: aws.String(req.ReplacementID)},
		{Key: aws.String(TagRole), Value: aws.String(string(role))},
		{Key: aws.String(TagLaunchToken), Value: aws.String(req.Token)},
		{Key: aws.String("Name"), Value: aws.String(fmt.Sprintf("%s-%s-%d", p.Opts.Cluster, role, req.NodeID))},
	}
	lt := &types.LaunchTemplateSpecification{Version: aws.String(p.Opts.LaunchTemplateVersion)}
	if strings.HasPrefix(template, "lt-") {
		lt.LaunchTemplateId = aws.String(template)
	} else {
		lt.LaunchTemplateName = aws.String(template)
	}
	token := req.Token
	if len(token) > 64 {
		token = token[:64] // EC2's limit; the tag keeps the whole token
	}
	out, err := p.API.RunInstances(ctx, &ec2.RunInstancesInput{
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate: lt,
		ImageId:        img.ImageId,
		InstanceType:   types.InstanceType(instanceType), // "": the template's
		SubnetId:       aws.String(subnet),
		ClientToken:    aws.String(token),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: tags},
			{ResourceType: types.ResourceTypeVolume, Tags: tags[:3]},
			// The IAM policy lets a launch create only what carries the
			// cluster tag in the request: the network interface too.
			{ResourceType: types.ResourceTypeNetworkInterface, Tags: tags[:1]},
		},
	}, func(o *ec2.Options) {
		// No SDK-level retry: a launch whose answer was lost is retried by
		// the executor, which first looks for the token above.
		o.RetryMaxAttempts = 1
	})
	if err != nil {
		return replace.Instance{}, fmt.Errorf("run instance like %s in %s from %s: %w", req.Like.ID, subnet, aws.ToString(img.ImageId), err)
	}
	if len(out.Instances) != 1 {
		return replace.Instance{}, fmt.Errorf("run instances returned %d instances, want 1", len(out.Instances))
	}
	in, ok := p.toInstance(out.Instances[0])
	if !ok {
		return replace.Instance{}, fmt.Errorf("launched %s without fleetd's tags", aws.ToString(out.Instances[0].InstanceId))
	}
	return in, nil
}

// Lookup finds instance id in any state; ok is false when it is not a broker
// of this cluster (or does not exist).
func (p *Provider) Lookup(ctx context.Context, id string) (replace.Instance, bool, error) {
	found, err := p.LookupMany(ctx, []string{id})
	if err != nil {
		return replace.Instance{}, false, err
	}
	in, ok := found[id]
	return in, ok, nil
}

// lookupChunk is how many instance ids one DescribeInstances filter carries
// (EC2 accepts up to 200 values per filter).
const lookupChunk = 200

// LookupMany finds which of ids are brokers of this cluster, in any state,
// with one filtered DescribeInstances per 200 ids (and its pages): a message
// naming thousands of instances costs a handful of calls, not one each.
func (p *Provider) LookupMany(ctx context.Context, ids []string) (map[string]replace.Instance, error) {
	found := map[string]replace.Instance{}
	for start := 0; start < len(ids); start += lookupChunk {
		chunk := ids[start:min(start+lookupChunk, len(ids))]
		in := &ec2.DescribeInstancesInput{Filters: []types.Filter{p.clusterFilter(), {Name: aws.String("instance-id"), Values: chunk}}}
		for page := 0; ; page++ {
			out, err := p.API.DescribeInstances(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("describe %d instances: %w", len(chunk), err)
			}
			for _, r := range out.Reservations {
				for _, i := range r.Instances {
					if b, ok := p.toInstance(i); ok {
						found[b.ID] = b
					}
				}
			}
			if aws.ToString(out.NextToken) == "" || page >= 100 {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	return found, nil
}

// NewestImageID is the AMI a broker launched now would run.
func (p *Provider) NewestImageID(ctx context.Context) (string, error) {
	img, err := p.NewestImage(ctx)
	if err != nil {
		return "", err
	}
	return aws.ToString(img.ImageId), nil
}

// owned returns the instance if it carries this cluster's tag, and refuses
// anything else: fleetd must never touch an instance that is not its own.
func (p *Provider) owned(ctx context.Context, id string) (replace.Instance, error) {
	out, err := p.API.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return replace.Instance{}, fmt.Errorf("describe %s: %w", id, err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if in, ok := p.toInstance(i); ok {
				return in, nil
			}
			return replace.Instance{}, fmt.Errorf("refusing to act on %s: it does not carry %s=%s and a node id tag %s", id, p.Opts.ClusterTag, p.Opts.Cluster, p.Opts.NodeIDTag)
		}
	}
	return replace.Instance{}, fmt.Errorf("instance %s not found", id)
}

// Stop stops the instance; its OS shutdown stops Kafka with a controlled
// shutdown. Idempotent.
func (p *Provider) Stop(ctx context.Context, id string) error {
	in, err := p.owned(ctx, id)
	if err != nil {
		return err
	}
	switch in.State {
	case replace.StateStopping, replace.StateStopped, replace.StateShuttingDown, replace.StateTerminated:
		return nil
	}
	if _, err := p.API.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	return nil
}

// Terminate destroys the instance. Idempotent.
func (p *Provider) Terminate(ctx context.Context, id string) error {
	in, err := p.owned(ctx, id)
	if err != nil {
		return err
	}
	if in.State == replace.StateTerminated || in.State == replace.StateShuttingDown {
		return nil
	}
	if _, err := p.API.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		return fmt.Errorf("terminate %s: %w", id, err)
	}
	return nil
}

// TagProgress records a replacement's step on its instances, so that people
// and a fleetd on another host see it in the console. Only the cluster's
// own instances are tagged.
func (p *Provider) TagProgress(ctx context.Context, r *replace.Record) error {
	var ids []string
	for _, id := range []string{r.OldInstance, r.NewInstance} {
		if id == "" {
			continue
		}
		if _, err := p.owned(ctx, id); err != nil {
			return err
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := p.API.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: []types.Tag{
		{Key: aws.String(TagReplacement), Value: aws.String(r.ID)},
		{Key: aws.String(TagStep), Value: aws.String(string(r.Phase) + "/" + string(r.Step) + " " + time.Now().UTC().Format(time.RFC3339))},
	}})
	if err != nil {
		return fmt.Errorf("tag progress of %s: %w", r.ID, err)
	}
	return nil
}
