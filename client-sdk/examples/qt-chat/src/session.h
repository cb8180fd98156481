// Session: one FeigeClient of the C SDK, driven from the GUI thread without ever blocking it.
//
// feige_call returns at once with a request id; the completion, the server's pushes and the
// connection's state changes arrive in the SDK's event queue. A QSocketNotifier watches the
// SDK's wakeup descriptor (readable exactly while events wait) and drain() hands each event to
// the callback registered for its request or to the pushed/stateChanged signals.
#pragma once

#include <QHash>
#include <QJsonObject>
#include <QObject>
#include <QString>

#include <functional>

struct FeigeClient;
class QSocketNotifier;
class QThread;

class Session : public QObject {
    Q_OBJECT
public:
    /// Called on the GUI thread with the completion's status (FEIGE_OK or an error) and JSON
    /// (the result, or {"error":{"code","message"}}).
    using Callback = std::function<void(int status, const QJsonObject &json)>;

    explicit Session(QObject *parent = nullptr);
    ~Session() override;

    /// Creates the SDK client for `server` ("host:port") with its persistent outbox in
    /// `outboxFile`; false (and `error`) when refused. A client for another server is closed
    /// first (in the background); for the same server, nothing changes.
    bool open(const QString &server, const QString &outboxFile, QString *error);
    /// The server this session talks to ("" before open()).
    QString server() const { return server_; }

    /// Starts `method`; `cb` (optional) runs once with its completion. A call the SDK refuses
    /// at once (bad params, shut down, busy) completes through `cb` too, on the next turn of
    /// the event loop, so callers handle one path. Returns the request id (0 when refused).
    quint64 call(const char *method, const QJsonObject &params, Callback cb = {});

    /// Starts `method` on the session's sender thread, for calls that may block for a moment
    /// (`send_message` appends to the outbox file and fsyncs it). They run in call order;
    /// only a refusal comes back (`onRefused`, on the GUI thread): with the outbox, the rest
    /// arrives as `outbox` events.
    void callOnSender(const char *method, const QJsonObject &params, Callback onRefused);

    /// Shuts the client down and frees it on the sender thread, after the calls queued there
    /// (the graceful close waits for the last ack), then emits closed(). The session takes no
    /// more calls.
    void closeAsync();

    /// The error text of a completion, e.g. "NOT_FRIENDS: not friends".
    static QString errorText(const QJsonObject &json);
    /// The error code of a completion ("" when none).
    static QString errorCode(const QJsonObject &json);

signals:
    void pushed(const QJsonObject &json);
    void stateChanged(const QJsonObject &json);
    void closed();

private slots:
    void drain();

private:
    /// Stops watching the current client and shuts it down and frees it on the sender
    /// thread; false when there was no client. With `notify`, closed() follows.
    bool detach(bool notify);

    FeigeClient *client_ = nullptr;
    QSocketNotifier *notifier_ = nullptr;
    QHash<quint64, Callback> pending_;
    QThread *senderThread_;
    QObject *sender_; // lives in senderThread_: runs callOnSender's calls and the shutdown
    QString server_;
};
