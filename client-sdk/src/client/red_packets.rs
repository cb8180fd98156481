//! Red packets and the wallet.

use feige_protocol::{pb, RequestKind, ResponseResult};

use super::Client;
use crate::link::{lock, unexpected};
use crate::ClientError;

impl Client {
    /// Sends a red packet into a conversation; returns the ack of its message once the
    /// packet is stored and paid for (the packet's id is `message_id`). A `client_msg_id` of
    /// 0 is replaced by a fresh one; a resend with the same id is acked with the original
    /// and costs nothing more.
    ///
    /// # Errors
    /// `INSUFFICIENT_FUNDS`, `FORBIDDEN` (not a member), `NOT_FOUND`, `INVALID_ARGUMENT`, or
    /// a connection error.
    pub async fn red_packet_send(
        &self,
        mut packet: pb::SendRedPacket,
    ) -> Result<pb::SendOk, ClientError> {
        if packet.client_msg_id == 0 {
            packet.client_msg_id = self.inner.next_client_msg_id();
        }
        let id = packet.client_msg_id;
        // As for a message: if a sync brings it back, it is known as ours.
        lock(&self.inner.tracker).begin_send(id);
        let result = match self.call(RequestKind::RedPacketSend(packet)).await {
            Ok(ResponseResult::Send(ok)) => Ok(ok),
            Ok(other) => Err(unexpected("SendRedPacket", &other)),
            Err(e) => Err(e),
        };
        if !matches!(result, Err(ClientError::Timeout | ClientError::Closed)) {
            lock(&self.inner.tracker).end_send(id);
        }
        result
    }

    /// Takes a share of a red packet; returns it.
    ///
    /// # Errors
    /// `RED_PACKET_EMPTY`, `ALREADY_GRABBED`, `RED_PACKET_EXPIRED`, `FORBIDDEN`, `NOT_FOUND`,
    /// or a connection error.
    pub async fn red_packet_grab(&self, packet_id: u64) -> Result<pb::RedPacketGrab, ClientError> {
        let r = pb::GrabRedPacket { packet_id };
        match self.call(RequestKind::RedPacketGrab(r)).await? {
            ResponseResult::RedPacketGrab(g) => Ok(g),
            other => Err(unexpected("GrabRedPacket", &other)),
        }
    }

    /// A red packet's state and grabs.
    ///
    /// # Errors
    /// `FORBIDDEN`, `NOT_FOUND`, or a connection error.
    pub async fn red_packet_info(&self, packet_id: u64) -> Result<pb::RedPacket, ClientError> {
        let r = pb::GetRedPacket { packet_id };
        match self.call(RequestKind::RedPacketInfo(r)).await? {
            ResponseResult::RedPacketInfo(p) => Ok(p),
            other => Err(unexpected("GetRedPacket", &other)),
        }
    }

    /// The user's wallet balance, in cents.
    ///
    /// # Errors
    /// A connection error.
    pub async fn wallet(&self) -> Result<i64, ClientError> {
        match self.call(RequestKind::Wallet(pb::GetWallet {})).await? {
            ResponseResult::Wallet(w) => Ok(w.balance_cents),
            other => Err(unexpected("GetWallet", &other)),
        }
    }

    /// Credits `user_id`'s wallet with `amount_cents` (admins only); returns their new
    /// balance.
    ///
    /// # Errors
    /// `FORBIDDEN` (not an admin), `NOT_FOUND`, `INVALID_ARGUMENT`, or a connection error.
    pub async fn wallet_top_up(&self, user_id: u64, amount_cents: u64) -> Result<i64, ClientError> {
        let r = pb::TopUp {
            user_id,
            amount_cents,
        };
        match self.call(RequestKind::WalletTopUp(r)).await? {
            ResponseResult::WalletTopUp(w) => Ok(w.balance_cents),
            other => Err(unexpected("TopUp", &other)),
        }
    }
}
