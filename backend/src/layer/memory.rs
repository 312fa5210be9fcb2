//! The in-process layer: groups live in this instance's [`Hub`] only.

use async_trait::async_trait;

use super::{ChannelLayer, ConnId, Delivery, Hub, LayerError};

/// One instance, no network hop: a group send is a loop over the members' queues.
#[derive(Default)]
pub struct MemoryLayer {
    hub: Hub,
}

impl MemoryLayer {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ChannelLayer for MemoryLayer {
    async fn group_add(&self, group: &str, conn: ConnId) -> Result<(), LayerError> {
        self.hub.group_add(group, conn);
        Ok(())
    }

    fn group_discard(&self, group: &str, conn: ConnId) {
        self.hub.group_discard(group, conn);
    }

    fn leave_all(&self, conn: ConnId) {
        self.hub.unregister(conn);
    }

    fn group_send(&self, group: &str, delivery: Delivery) -> Result<(), LayerError> {
        self.hub.deliver_group(group, &delivery);
        Ok(())
    }

    fn group_send_counted(&self, group: &str, delivery: Delivery) -> Result<usize, LayerError> {
        Ok(self.hub.deliver_group(group, &delivery))
    }

    fn send(&self, conn: ConnId, delivery: Delivery) -> Result<(), LayerError> {
        self.hub.deliver_conn(conn, &delivery);
        Ok(())
    }

    fn hub(&self) -> &Hub {
        &self.hub
    }

    fn is_up(&self) -> bool {
        true
    }
}
