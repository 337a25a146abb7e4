variable "cluster" {
  description = "Kafka cluster name: the value of the cluster tag on every broker instance, and fleetd's `cluster` setting."
  type        = string
}

variable "cluster_tag" {
  description = "Tag key whose value is the cluster name (fleetd's ec2.cluster_tag)."
  type        = string
  default     = "fleetd:cluster"
}

variable "node_id_tag" {
  description = "Tag key whose value is a broker's Kafka node id (fleetd's ec2.node_id_tag)."
  type        = string
  default     = "fleetd:node-id"
}

variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "subnet_ids" {
  description = "Broker subnets, one per AZ (a broker's replacement goes into its old subnet)."
  type        = list(string)
}

variable "instance_type" {
  description = "Broker instance type."
  type        = string
  default     = "im4gn.4xlarge"
}

variable "controller_instance_type" {
  description = "KRaft controller instance type (controllers keep only the metadata log)."
  type        = string
  default     = "m7g.large"
}

variable "ami_owners" {
  description = "Owners of broker AMIs (fleetd's ec2.ami_owners)."
  type        = list(string)
  default     = ["self"]
}

variable "ami_tags" {
  description = "Tags a broker AMI carries (the Packer template writes them; fleetd's ec2.ami_tags)."
  type        = map(string)
  default     = { "fleetd:role" = "kafka-broker" }
}

variable "client_cidrs" {
  description = "CIDR blocks of Kafka clients allowed to reach the brokers."
  type        = list(string)
  default     = []
}

variable "kafka_port" {
  description = "Kafka client and inter-broker port."
  type        = number
  default     = 9092
}

variable "controller_port" {
  description = "KRaft controller quorum port."
  type        = number
  default     = 9093
}

variable "fleetd_role_name" {
  description = "Name of an existing IAM role fleetd runs as (its instance role); the fleetd policy is attached to it. Empty: only the policy is created (output fleetd_policy_arn)."
  type        = string
  default     = ""
}

variable "message_retention_seconds" {
  description = "How long an unconsumed event stays on the queue (4 days: longer than any fleetd outage you would not notice)."
  type        = number
  default     = 345600
}

variable "max_receive_count" {
  description = "Receives before a message fleetd cannot handle (malformed) moves to the dead-letter queue."
  type        = number
  default     = 5
}

variable "tags" {
  description = "Tags for every resource the module creates."
  type        = map(string)
  default     = {}
}

variable "kafka_cluster_id" {
  description = "The KRaft cluster id; brokers format a new instance store with it at boot (tag fleetd:cluster-id)."
  type        = string
}

variable "controller_quorum" {
  description = "controller.quorum.bootstrap.servers for brokers and controllers, host:port,... (tag fleetd:controller-quorum). Use DNS names (or a load balancer) that follow the controllers: a node that loses the quorum's leader goes back to these, and addresses of replaced controllers would strand it."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for the root volumes, the event queues and the lease table (null: the AWS managed keys)"
  type        = string
  default     = null
}

variable "root_volume_gib" {
  description = "Size of each broker's encrypted root volume (logs and config; Kafka's data is on the instance store)"
  type        = number
  default     = 30
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified when the events dead-letter queue is not empty"
  type        = list(string)
  default     = []
}

variable "https_egress_cidrs" {
  description = "Where brokers may open HTTPS connections (the AWS APIs); narrow it to your VPC endpoints' ranges where you have them"
  type        = list(string)
  default     = ["0.0.0.0/0"]
}
