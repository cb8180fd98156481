#include "session.h"

#include "feige.h"

#include <QJsonDocument>
#include <QSocketNotifier>
#include <QThread>
#include <QTimer>

namespace {

// Events handled per wakeup: the descriptor stays readable while more wait, so the notifier
// fires again on the next turn and input and painting are served between batches.
constexpr int kDrainBatch = 256;

QJsonObject refusal(int32_t status, const char *detail) {
    QJsonObject error{{"code", QString::fromUtf8(feige_status_str(status))},
                      {"message", QString::fromUtf8(detail)}};
    return QJsonObject{{"error", error}};
}

} // namespace

Session::Session(QObject *parent)
    : QObject(parent), senderThread_(new QThread(this)), sender_(new QObject) {
    sender_->moveToThread(senderThread_);
    connect(senderThread_, &QThread::finished, sender_, &QObject::deleteLater);
    senderThread_->setObjectName(QStringLiteral("feige-sender"));
    senderThread_->start();
}

Session::~Session() {
    delete notifier_;
    notifier_ = nullptr;
    // Stop the sender thread after what is queued there (a shutdown included) has run.
    QThread *thread = senderThread_;
    QMetaObject::invokeMethod(sender_, [thread] { thread->quit(); }, Qt::QueuedConnection);
    senderThread_->wait();
    if (client_) {
        // Only reached when closeAsync() was not used (e.g. an early exit): close at once.
        feige_client_shutdown(client_, 0);
        feige_client_free(client_);
    }
}

bool Session::open(const QString &server, const QString &outboxFile, QString *error) {
    if (client_ && server == server_)
        return true;
    detach(false);
    const QJsonObject config{{"server", server},
                             {"device", "desktop"},
                             {"client_name", "qt-chat"},
                             {"outbox_file", outboxFile}};
    const QByteArray json = QJsonDocument(config).toJson(QJsonDocument::Compact);
    const int32_t rc = feige_client_new(json.constData(), &client_);
    if (rc != FEIGE_OK) {
        *error = QString::fromUtf8(feige_last_error());
        client_ = nullptr;
        return false;
    }
    int fd = -1;
    if (feige_client_wakeup_fd(client_, &fd) != FEIGE_OK) {
        *error = QStringLiteral("no wakeup descriptor on this platform");
        feige_client_free(client_);
        client_ = nullptr;
        return false;
    }
    server_ = server;
    notifier_ = new QSocketNotifier(fd, QSocketNotifier::Read, this);
    connect(notifier_, &QSocketNotifier::activated, this, &Session::drain);
    return true;
}

quint64 Session::call(const char *method, const QJsonObject &params, Callback cb) {
    uint64_t id = 0;
    int32_t rc = FEIGE_ERR_SHUT_DOWN;
    QString detail = QStringLiteral("the session is closed");
    if (client_) {
        const QByteArray json = QJsonDocument(params).toJson(QJsonDocument::Compact);
        rc = feige_call(client_, method, json.constData(), &id);
        detail = QString::fromUtf8(feige_last_error());
    }
    if (rc != FEIGE_OK) {
        qWarning("feige_call(%s): %s: %s", method, feige_status_str(rc), qPrintable(detail));
        if (cb) {
            const QJsonObject json = refusal(rc, detail.toUtf8().constData());
            QTimer::singleShot(0, this, [cb, rc, json] { cb(rc, json); });
        }
        return 0;
    }
    if (cb)
        pending_.insert(id, std::move(cb));
    return id;
}

void Session::callOnSender(const char *method, const QJsonObject &params, Callback onRefused) {
    FeigeClient *client = client_;
    if (!client) {
        const QJsonObject json = refusal(FEIGE_ERR_SHUT_DOWN, "the session is closed");
        QTimer::singleShot(0, this, [onRefused, json] { onRefused(FEIGE_ERR_SHUT_DOWN, json); });
        return;
    }
    const QByteArray name(method);
    const QByteArray json = QJsonDocument(params).toJson(QJsonDocument::Compact);
    // `client` stays valid on the sender thread: its shutdown and free are queued there too,
    // behind this call.
    QMetaObject::invokeMethod(
        sender_,
        [this, client, name, json, onRefused] {
            uint64_t id = 0;
            const int32_t rc = feige_call(client, name.constData(), json.constData(), &id);
            if (rc == FEIGE_OK)
                return;
            const QJsonObject error = refusal(rc, feige_last_error());
            QMetaObject::invokeMethod(
                this, [onRefused, rc, error] { onRefused(rc, error); }, Qt::QueuedConnection);
        },
        Qt::QueuedConnection);
}

void Session::drain() {
    if (!client_)
        return;
    for (int i = 0; i < kDrainBatch; ++i) {
        FeigeEvent *ev = nullptr;
        if (feige_poll_event(client_, &ev) != FEIGE_OK)
            return;
        const char *utf8 = nullptr;
        size_t len = 0;
        QJsonObject json;
        if (feige_event_json(ev, &utf8, &len) == FEIGE_OK)
            json = QJsonDocument::fromJson(QByteArray(utf8, qsizetype(len))).object();
        const int32_t kind = feige_event_kind(ev);
        const uint64_t requestId = feige_event_request_id(ev);
        const int32_t status = feige_event_status(ev);
        feige_event_free(ev);
        switch (kind) {
        case FEIGE_EVENT_RESPONSE: {
            const Callback cb = pending_.take(requestId);
            if (cb)
                cb(status, json);
            break;
        }
        case FEIGE_EVENT_PUSH:
            emit pushed(json);
            break;
        case FEIGE_EVENT_STATE:
            emit stateChanged(json);
            break;
        default:
            break;
        }
        if (!client_)
            return; // a callback closed the session
    }
}

bool Session::detach(bool notify) {
    delete notifier_;
    notifier_ = nullptr;
    pending_.clear();
    FeigeClient *client = client_;
    client_ = nullptr;
    server_.clear();
    if (!client)
        return false;
    QMetaObject::invokeMethod(
        sender_,
        [this, client, notify] {
            feige_client_shutdown(client, 2000);
            feige_client_free(client);
            if (notify)
                QMetaObject::invokeMethod(this, &Session::closed, Qt::QueuedConnection);
        },
        Qt::QueuedConnection);
    return true;
}

void Session::closeAsync() {
    if (!detach(true))
        QTimer::singleShot(0, this, &Session::closed);
}

QString Session::errorCode(const QJsonObject &json) {
    return json.value("error").toObject().value("code").toString();
}

QString Session::errorText(const QJsonObject &json) {
    const QJsonObject e = json.value("error").toObject();
    return e.value("code").toString() + QStringLiteral(": ") + e.value("message").toString();
}
