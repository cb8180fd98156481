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

class Session : public QObject {
    Q_OBJECT
public:
    /// Called on the GUI thread with the completion's status (FEIGE_OK or an error) and JSON
    /// (the result, or {"error":{"code","message"}}).
    using Callback = std::function<void(int status, const QJsonObject &json)>;

    explicit Session(QObject *parent = nullptr);
    ~Session() override;

    /// Creates the SDK client for `server` ("host:port"); false (and `error`) when refused.
    /// A client for another server is closed first (in the background); for the same server,
    /// nothing changes.
    bool open(const QString &server, QString *error);
    /// The server this session talks to ("" before open()).
    QString server() const { return server_; }

    /// Starts `method`; `cb` (optional) runs once with its completion. A call the SDK refuses
    /// at once (bad params, shut down, busy) completes through `cb` too, on the next turn of
    /// the event loop, so callers handle one path. Returns the request id (0 when refused).
    quint64 call(const char *method, const QJsonObject &params, Callback cb = {});

    /// Shuts the client down and frees it on a worker thread (the graceful close waits for
    /// the last ack), then emits closed(). The session takes no more calls.
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
    /// Stops watching the current client and shuts it down and frees it on a worker thread;
    /// false when there was no client. With `notify`, closed() follows the worker's end.
    bool detach(bool notify);

    FeigeClient *client_ = nullptr;
    QSocketNotifier *notifier_ = nullptr;
    QHash<quint64, Callback> pending_;
    QString server_;
};
