//! Tests of the three wire protocols' encoding and decoding.

use super::*;

#[test]
fn payload_round_trip() {
    let mut p = Vec::new();
    payload(123_456, 42, 7, &mut p);
    assert_eq!(p.len(), 100);
    assert_eq!(parse_payload(&p), Some((123_456, 42, 7)));
}

#[test]
fn mqtt_publish_round_trip_with_puback() {
    let mut w = Wire::Mqtt {
        qos: 1,
        next_pid: 9,
    };
    let mut buf = BytesMut::new();
    w.encode_send(3, 0, b"hello", &mut buf);
    // A broker forwards the same PUBLISH bytes; decoding it must ack packet id 9.
    let mut out = BytesMut::new();
    match w.decode(&mut buf, &mut out).unwrap() {
        Some(Event::Delivered(p)) => assert_eq!(&p[..], b"hello"),
        other => panic!("{other:?}"),
    }
    assert_eq!(&out[..], &[0x40, 0x02, 0, 9]);
    assert!(buf.is_empty());
}

#[test]
fn nats_msg_partial_and_ping() {
    let mut w = Wire::Nats;
    let mut out = BytesMut::new();
    let mut buf = BytesMut::from(&b"PING\r\nMSG u.1 1 5\r\nhel"[..]);
    assert!(matches!(
        w.decode(&mut buf, &mut out).unwrap(),
        Some(Event::Other)
    ));
    assert_eq!(&out[..], b"PONG\r\n");
    assert!(w.decode(&mut buf, &mut out).unwrap().is_none());
    buf.extend_from_slice(b"lo\r\n");
    match w.decode(&mut buf, &mut out).unwrap() {
        Some(Event::Delivered(p)) => assert_eq!(&p[..], b"hello"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn feige_delivery_is_read_for_its_text_and_other_frames_in_full() {
    let mut w = Wire::Feige {
        ids: Arc::new(vec![1, 2]),
        next_rid: 1,
    };
    let msg = pb::Message {
        message_id: 77,
        conversation_id: 5,
        seq: 300,
        from_user: 1,
        client_msg_id: 9,
        text: "12 0 3 the quick".into(),
        sent_at_ms: 1_700_000_000_000,
        to_user: 2,
        mentions: vec![4, 5],
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    frame::encode(&Envelope::push(PushKind::Message(msg.clone())), &mut buf);
    let empty = pb::Message {
        text: String::new(),
        ..msg
    };
    frame::encode(&Envelope::push(PushKind::Message(empty)), &mut buf);
    let ok = ResponseResult::Send(pb::SendOk::default());
    frame::encode(&Envelope::response(3, ok), &mut buf);
    let mut out = BytesMut::new();
    let texts: Vec<Vec<u8>> = std::iter::from_fn(|| match w.decode(&mut buf, &mut out) {
        Ok(Some(Event::Delivered(p))) => Some(p.to_vec()),
        Ok(Some(Event::Acked)) => Some(b"<acked>".to_vec()),
        _ => None,
    })
    .collect();
    assert_eq!(
        texts,
        vec![
            b"12 0 3 the quick".to_vec(),
            Vec::new(),
            b"<acked>".to_vec()
        ]
    );
    assert!(buf.is_empty());
    // A truncated envelope is not walked: it goes to the full decoder, which refuses it.
    assert_eq!(scan::len_field(&[0x22, 0x05, 0x0a], 4), None);
}
