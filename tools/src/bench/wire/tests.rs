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
