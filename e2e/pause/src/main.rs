//! `berth-pause`: the sandbox process of the local test node's pods. It holds the pod's
//! namespaces and sleeps; the runtime stops a sandbox with SIGKILL.
#![forbid(unsafe_code)]

fn main() {
    loop {
        std::thread::park();
    }
}
