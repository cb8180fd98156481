// ChatView: one conversation (1:1 or group): history paged backwards, live messages, sending
// with a state per message (sending, sent, failed, retry), files sent and downloaded.
//
// Sends go through the SDK's persistent outbox (one at a time, in call order, across
// reconnects and restarts; its `outbox` events report sending, sent and failed). A retry of a
// failed send uses the same client_msg_id, so the server stores the message once. The view's
// own list of unacked sends (of every conversation) outlives switching conversations.
#pragma once

#include <QHash>
#include <QJsonObject>
#include <QSet>
#include <QWidget>

class QLabel;
class QLineEdit;
class QListWidget;
class QListWidgetItem;
class QPushButton;
class Session;

class ChatView : public QWidget {
    Q_OBJECT
public:
    ChatView(Session *session, const QHash<QString, QString> *names, QWidget *parent = nullptr);

    void setSelf(const QString &userId) { self_ = userId; }
    /// Shows a conversation: by `conversationId`, or (none yet) with `peerUser`.
    void open(const QString &conversationId, const QString &peerUser, const QString &title);
    void clear();
    QString conversationId() const { return conversationId_; }
    QString peerUser() const { return peerUser_; }

    /// Sends `text` into the open conversation; returns its client_msg_id ("" if none open).
    QString sendText(const QString &text);
    /// Uploads the file at `path`, then sends it as an image or a file message.
    void sendFile(const QString &path);
    /// Downloads file `fileId` to `path` (a double-click on a file message asks for the path).
    void downloadTo(const QString &fileId, const QString &path);
    /// Resends a failed message with its client_msg_id.
    void retry(const QString &clientMsgId);

    /// A message push (or a synced one) of any conversation: shown when it belongs here.
    void onMessage(const QJsonObject &message);
    /// An `outbox` event of the SDK's persistent outbox: a send's state moved on.
    void onOutbox(const QJsonObject &event);
    /// A `progress` push: shown while one of this view's transfers runs.
    void onProgress(const QJsonObject &progress);
    /// Asks for the page before the oldest message shown (nothing while one is on its way,
    /// or when the first message is shown).
    void loadOlder();
    /// The seqs of the stored messages shown, top to bottom.
    QList<qulonglong> shownSeqs() const;

signals:
    /// A send of this client changed state: "sending", "sent" (with the ack) or "failed".
    void sendState(const QString &clientMsgId, const QString &state, const QJsonObject &json);
    /// The open conversation was read up to `seq` (shown on screen).
    void readUpTo(const QString &conversationId, const QString &seq);
    /// A download of downloadTo() ended.
    void downloaded(const QString &fileId, const QString &path, bool ok);
    /// A page of history arrived (or failed); `hasMore`: older messages remain.
    void historyLoaded(bool ok, bool hasMore);

private:
    struct Outgoing {
        QJsonObject params;  // send_message's params (client_msg_id included)
        QJsonObject message; // as shown until acked
        QString state;
        QString path; // a file to upload first ("" for text)
    };

    void onHistory(quint64 token, int status, const QJsonObject &json);
    void append(const QJsonObject &message);
    void submit(const QString &clientMsgId);
    void sent(const QString &clientMsgId, const QJsonObject &ack);
    void showOutgoing(const QString &clientMsgId);
    QListWidgetItem *findPending(const QString &clientMsgId) const;
    bool belongsHere(const QJsonObject &message) const;
    void download(QListWidgetItem *it);
    static QString newClientMsgId();

    Session *session_;
    const QHash<QString, QString> *names_;
    QString self_;
    QString conversationId_;
    QString peerUser_;
    QLabel *title_;
    QLabel *status_;
    QListWidget *list_;
    QPushButton *older_;
    QLineEdit *input_;
    QPushButton *retry_;
    QPushButton *file_;
    QSet<qulonglong> seqs_;          // seqs shown (history and live overlap)
    qulonglong oldest_ = 0;          // smallest seq shown, for before_seq
    bool hasMore_ = false;
    bool loading_ = false;
    quint64 openToken_ = 0;          // grows with each open(): late history pages are dropped
    QHash<QString, Outgoing> outbox_; // by client_msg_id, until acked
    QSet<quint64> transfers_;         // request ids of this view's uploads and downloads
};
