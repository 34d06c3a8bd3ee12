# linkissuer on Cloud Run worker pools, keyless: every upload under
# uploads/ in the source bucket gets a 1-hour GET link on PROJECT's
# linkissuer-results topic, and bulk export jobs write manifests to the
# manifest bucket.
#
#   terraform init
#   terraform apply -var project_id=my-project -var image=REGION-docker.pkg.dev/my-project/apps/linkissuer:v1

terraform {
  required_version = ">= 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.38.0, < 8.0.0"
    }
  }
}

variable "project_id" {
  type = string
}

variable "region" {
  type    = string
  default = "us-central1"
}

variable "image" {
  description = "The image built from the repository's Dockerfile."
  type        = string
}

provider "google" {
  project = var.project_id
  region  = var.region
}

resource "google_storage_bucket" "uploads" {
  name                        = "${var.project_id}-uploads"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
}

# Manifests hold signed URLs: credentials until they expire. Keep the bucket
# private and expire the manifests soon after their links.
resource "google_storage_bucket" "manifests" {
  name                        = "${var.project_id}-linkissuer-manifests"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "Delete"
    }
  }
}

module "linkissuer" {
  source = "../../modules/linkissuer"

  project_id = var.project_id
  region     = var.region
  image      = var.image
  mode       = "pull"

  sources = [
    { bucket = google_storage_bucket.uploads.name, prefixes = ["uploads/"] },
  ]
  manifest_bucket = google_storage_bucket.manifests.name

  methods        = ["GET"]
  default_expiry = "15m"
  max_expiry     = "1h"

  min_instances  = 1
  max_instances  = 3
  jobs_instances = 1

  # Tear-down friendly for a trial; keep the default (true) in production.
  deletion_protection = false
}

output "service_account_email" {
  value = module.linkissuer.service_account_email
}

output "results_topic" {
  value = module.linkissuer.topics.results
}
