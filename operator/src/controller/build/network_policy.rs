//! A NetworkPolicy admitting only the listed peers to the registry port.

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels::{REGISTRY_COMPONENT, metadata, selector};
use crate::controller::model::{REGISTRY_PORT, ValidatedRegistry};

pub fn network_policy(v: &ValidatedRegistry) -> Option<NetworkPolicy> {
    let peers = v.network_policy.as_ref()?;
    Some(NetworkPolicy {
        metadata: metadata(v, v.name.clone(), REGISTRY_COMPONENT),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector(&v.name, REGISTRY_COMPONENT)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                // No peers listed: the namespace's own pods (and the kubelet's probes).
                from: Some(if peers.is_empty() {
                    vec![k8s_openapi::api::networking::v1::NetworkPolicyPeer {
                        pod_selector: Some(LabelSelector::default()),
                        ..Default::default()
                    }]
                } else {
                    peers.clone()
                }),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(REGISTRY_PORT)),
                    protocol: Some("TCP".into()),
                    end_port: None,
                }]),
            }]),
            egress: None,
        }),
    })
}
