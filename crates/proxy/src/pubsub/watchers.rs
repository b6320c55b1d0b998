//! MONITOR, and CLIENT TRACKING's links to every node that watch what it
//! does; the session's access to the link events.

// The methods of [`Subscriptions`] by job, over the types of this module.
use super::*;

impl Subscriptions {
    /// MONITOR: client `id` gets every command the proxy's clients send
    /// ([`crate::monitor`]) from now until RESET or the end of the
    /// connection, which close its event channel.
    pub fn monitor(&mut self, monitors: &crate::monitor::Monitors, id: u64, tenant: u16) {
        if !self.monitoring {
            self.monitoring = true;
            monitors.add(id, tenant, self.events_sender());
        }
    }

    /// CLIENT TRACKING ON: a tracking link to every primary. The client's
    /// `+OK` waits for every link's, so that no change after it goes
    /// unreported.
    pub fn start_tracking(
        &mut self,
        options: Options,
        router: &Router,
        redirect: Option<Arc<crate::clients::ClientInfo>>,
    ) -> Arc<Waiting> {
        self.stop_tracking();
        let mut tracking = Tracking::new(options);
        tracking.redirect = redirect;
        self.tracking = Some(tracking);
        let waiting = Arc::new(Waiting::default());
        self.open_tracking_links(router, Some(&waiting));
        waiting
    }

    /// Opens the tracking links that are missing (all, or the ones lost).
    pub(super) fn open_tracking_links(&mut self, router: &Router, waiting: Option<&Arc<Waiting>>) {
        let Some(command) = self.tracking.as_ref().map(Tracking::link_command) else {
            return;
        };
        let open: Vec<Arc<str>> = self
            .tracking
            .iter()
            .flat_map(|t| t.links.iter())
            .filter_map(|tag| self.links.get(tag).map(|l| l.addr.clone()))
            .collect();
        let topology = router.topology().current();
        for shard in topology.shards() {
            if open.contains(&shard.primary) {
                continue;
            }
            let tag = self.open(shard.primary.clone(), router, Protocol::Resp3);
            if let Some(link) = self.links.get(&tag) {
                link.connection.write(&command);
            }
            if let Some(tracking) = self.tracking.as_mut() {
                tracking.links.push(tag);
                let waiting = waiting.cloned().unwrap_or_default();
                waiting.add(1);
                tracking.confirming.insert(tag, waiting);
            }
        }
    }

    /// CLIENT TRACKING OFF: closes the tracking links.
    pub fn stop_tracking(&mut self) {
        if let Some(tracking) = self.tracking.take() {
            for tag in tracking.links {
                self.links.remove(&tag);
            }
        }
    }

    /// The tracking state, when on.
    pub fn tracking(&self) -> Option<&Tracking> {
        self.tracking.as_ref()
    }

    /// The tracking state, mutably, when on.
    pub fn tracking_mut(&mut self) -> Option<&mut Tracking> {
        self.tracking.as_mut()
    }

    /// True while the client monitors.
    pub fn is_monitoring(&self) -> bool {
        self.monitoring
    }

    /// The channel this client's links report to, created if needed: other
    /// sessions deliver redirected invalidations through it.
    pub fn events_sender(&mut self) -> mpsc::Sender<StreamEvent> {
        self.events.get_or_insert_with(|| mpsc::channel(EVENTS)).0.clone()
    }

    /// Waits for the next frame or end of a link. Pending for ever when the
    /// client has no link.
    pub async fn next_event(&mut self) -> StreamEvent {
        match &mut self.events {
            Some((_, receiver)) => match receiver.recv().await {
                Some(event) => event,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    /// Takes another event if one is queued, without waiting.
    pub fn try_event(&mut self) -> Option<StreamEvent> {
        self.events.as_mut()?.1.try_recv().ok()
    }

    /// When the lost subscriptions are due to be restored.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }
}
