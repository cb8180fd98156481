#include "chatview.h"

#include "messageitem.h"
#include "session.h"
#include "util.h"

#include "feige.h"

#include <QDateTime>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMimeDatabase>
#include <QPushButton>
#include <QRandomGenerator>
#include <QScrollBar>
#include <QVBoxLayout>

namespace {
constexpr int kPageSize = 30;
}

ChatView::ChatView(Session *session, const QHash<QString, QString> *names, QWidget *parent)
    : QWidget(parent), session_(session), names_(names) {
    title_ = new QLabel(tr("No conversation open"), this);
    QFont f = title_->font();
    f.setBold(true);
    title_->setFont(f);
    older_ = new QPushButton(tr("Load older messages"), this);
    older_->setEnabled(false);
    list_ = new QListWidget(this);
    list_->setWordWrap(true);
    list_->setSelectionMode(QAbstractItemView::SingleSelection);
    status_ = new QLabel(this);
    input_ = new QLineEdit(this);
    input_->setPlaceholderText(tr("Type a message and press Enter"));
    auto *send = new QPushButton(tr("Send"), this);
    file_ = new QPushButton(tr("File…"), this);
    retry_ = new QPushButton(tr("Retry"), this);
    retry_->setEnabled(false);

    auto *row = new QHBoxLayout;
    row->addWidget(input_, 1);
    row->addWidget(send);
    row->addWidget(file_);
    row->addWidget(retry_);
    auto *layout = new QVBoxLayout(this);
    layout->addWidget(title_);
    layout->addWidget(older_);
    layout->addWidget(list_, 1);
    layout->addWidget(status_);
    layout->addLayout(row);

    connect(older_, &QPushButton::clicked, this, &ChatView::loadOlder);
    connect(list_->verticalScrollBar(), &QScrollBar::valueChanged, this, [this](int v) {
        if (v == 0 && hasMore_)
            loadOlder();
    });
    auto sendInput = [this] {
        const QString text = input_->text().trimmed();
        if (!text.isEmpty() && !sendText(text).isEmpty())
            input_->clear();
    };
    connect(input_, &QLineEdit::returnPressed, this, sendInput);
    connect(send, &QPushButton::clicked, this, sendInput);
    connect(file_, &QPushButton::clicked, this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Send a file or image"));
        if (!path.isEmpty())
            sendFile(path);
    });
    connect(list_, &QListWidget::currentItemChanged, this, [this](QListWidgetItem *it) {
        retry_->setEnabled(it && it->data(item::State).toString() == QLatin1String("failed"));
    });
    connect(retry_, &QPushButton::clicked, this, [this] {
        if (QListWidgetItem *it = list_->currentItem())
            retry(it->data(item::ClientMsgId).toString());
    });
    connect(list_, &QListWidget::itemDoubleClicked, this, &ChatView::download);
}

void ChatView::clear() {
    ++openToken_;
    conversationId_.clear();
    peerUser_.clear();
    list_->clear();
    seqs_.clear();
    oldest_ = 0;
    hasMore_ = false;
    loading_ = false;
    older_->setEnabled(false);
    title_->setText(tr("No conversation open"));
    status_->clear();
}

void ChatView::open(const QString &conversationId, const QString &peerUser, const QString &title) {
    clear();
    conversationId_ = conversationId;
    peerUser_ = peerUser;
    title_->setText(title);
    loadOlder();
    for (auto it = outbox_.cbegin(); it != outbox_.cend(); ++it)
        if (belongsHere(it->message))
            showOutgoing(it.key());
}

void ChatView::loadOlder() {
    if (loading_ || (oldest_ != 0 && !hasMore_) || (conversationId_.isEmpty() && peerUser_.isEmpty()))
        return;
    loading_ = true;
    older_->setEnabled(false);
    QJsonObject params{{"limit", kPageSize}};
    if (!conversationId_.isEmpty())
        params.insert("conversation_id", conversationId_);
    else
        params.insert("peer_user", peerUser_);
    if (oldest_ != 0)
        params.insert("before_seq", QString::number(oldest_));
    const quint64 token = openToken_;
    session_->call("history", params, [this, token](int status, const QJsonObject &json) {
        onHistory(token, status, json);
    });
}

void ChatView::onHistory(quint64 token, int status, const QJsonObject &json) {
    if (token != openToken_)
        return; // a page of a conversation no longer open
    loading_ = false;
    if (status != FEIGE_OK) {
        // A 1:1 chat with no message yet has no conversation: nothing to show.
        if (Session::errorCode(json) != QLatin1String("NOT_FOUND"))
            status_->setText(tr("history: %1").arg(Session::errorText(json)));
        emit historyLoaded(false, false);
        return;
    }
    const bool first = oldest_ == 0;
    QListWidgetItem *anchor = list_->count() > 0 ? list_->item(0) : nullptr;
    const QJsonArray messages = json.value("messages").toArray();
    QString newest;
    for (const QJsonValue &v : messages) { // newest first: each goes on top
        const QJsonObject m = v.toObject();
        const qulonglong seq = m.value("seq").toString().toULongLong();
        if (newest.isEmpty())
            newest = m.value("seq").toString();
        if (conversationId_.isEmpty())
            conversationId_ = m.value("conversation_id").toString();
        if (oldest_ == 0 || seq < oldest_)
            oldest_ = seq;
        if (seqs_.contains(seq))
            continue;
        seqs_.insert(seq);
        const bool mine = m.value("from_user").toString() == self_;
        list_->insertItem(0, item::make(m, mine, mine ? QStringLiteral("sent") : QString(), *names_));
    }
    hasMore_ = json.value("has_more").toBool();
    older_->setEnabled(hasMore_);
    if (first) {
        list_->scrollToBottom();
        if (!newest.isEmpty() && !conversationId_.isEmpty())
            emit readUpTo(conversationId_, newest);
    } else if (anchor) {
        list_->scrollToItem(anchor, QAbstractItemView::PositionAtTop);
    }
    emit historyLoaded(true, hasMore_);
}

QList<qulonglong> ChatView::shownSeqs() const {
    QList<qulonglong> seqs;
    for (int row = 0; row < list_->count(); ++row)
        if (const qulonglong seq = list_->item(row)->data(item::Seq).toULongLong())
            seqs.append(seq);
    return seqs;
}

bool ChatView::belongsHere(const QJsonObject &m) const {
    const QString conv = m.value("conversation_id").toString();
    if (!conversationId_.isEmpty())
        return conv == conversationId_;
    if (peerUser_.isEmpty())
        return false;
    // A 1:1 conversation not known yet: recognise it by its two users.
    const QString from = m.value("from_user").toString();
    const QString to = m.value("to_user").toString();
    return (from == peerUser_ && to == self_) || (from == self_ && to == peerUser_);
}

void ChatView::onMessage(const QJsonObject &m) {
    if (!belongsHere(m))
        return;
    if (conversationId_.isEmpty())
        conversationId_ = m.value("conversation_id").toString();
    append(m);
    if (isVisible())
        emit readUpTo(conversationId_, m.value("seq").toString());
}

void ChatView::append(const QJsonObject &m) {
    const qulonglong seq = m.value("seq").toString().toULongLong();
    if (seqs_.contains(seq))
        return;
    seqs_.insert(seq);
    if (oldest_ == 0)
        oldest_ = seq;
    const bool atBottom =
        list_->verticalScrollBar()->value() >= list_->verticalScrollBar()->maximum() - 4;
    const bool mine = m.value("from_user").toString() == self_;
    list_->addItem(item::make(m, mine, mine ? QStringLiteral("sent") : QString(), *names_));
    if (atBottom)
        list_->scrollToBottom();
}

QString ChatView::newClientMsgId() {
    // The server keeps every id of a user forever, so ids must be unique across the user's
    // devices too: unix ms << 20 | a random 20-bit salt (the SDK's scheme), growing here.
    static qulonglong last = 0;
    const qulonglong now = (qulonglong(QDateTime::currentMSecsSinceEpoch()) << 20) |
                           QRandomGenerator::global()->bounded(1u << 20);
    last = now > last ? now : last + 1;
    return QString::number(last);
}

QString ChatView::sendText(const QString &text) {
    if (conversationId_.isEmpty() && peerUser_.isEmpty())
        return {};
    const QString id = newClientMsgId();
    QJsonObject params{{"text", text}, {"client_msg_id", id}};
    if (!conversationId_.isEmpty())
        params.insert("conversation_id", conversationId_);
    else
        params.insert("to_user", peerUser_);
    const QJsonObject message{{"from_user", self_},      {"to_user", peerUser_},
                              {"conversation_id", conversationId_}, {"kind", "text"},
                              {"text", text},            {"client_msg_id", id}};
    outbox_.insert(id, Outgoing{params, message, QStringLiteral("sending"), {}});
    showOutgoing(id);
    submit(id);
    return id;
}

void ChatView::sendFile(const QString &path) {
    if (conversationId_.isEmpty() && peerUser_.isEmpty())
        return;
    const QFileInfo info(path);
    const QString mime = QMimeDatabase().mimeTypeForFile(info).name();
    const QString kind = mime.startsWith(QLatin1String("image/")) ? QStringLiteral("image")
                                                                   : QStringLiteral("file");
    const QString id = newClientMsgId();
    QJsonObject params{{"kind", kind}, {"client_msg_id", id}};
    if (!conversationId_.isEmpty())
        params.insert("conversation_id", conversationId_);
    else
        params.insert("to_user", peerUser_);
    const QJsonObject file{{"name", info.fileName()}, {"size", double(info.size())}};
    const QJsonObject message{{"from_user", self_}, {"to_user", peerUser_},
                              {"conversation_id", conversationId_}, {"kind", kind},
                              {"file", file},        {"client_msg_id", id}};
    outbox_.insert(id, Outgoing{params, message, QStringLiteral("sending"), path});
    showOutgoing(id);
    submit(id);
}

void ChatView::submit(const QString &id) {
    auto found = outbox_.find(id);
    if (found == outbox_.end())
        return;
    found->state = QStringLiteral("sending");
    if (QListWidgetItem *it = findPending(id))
        item::setState(it, found->state, *names_);
    emit sendState(id, found->state, {});
    auto failed = [this, id](const QJsonObject &json) {
        auto o = outbox_.find(id);
        if (o == outbox_.end())
            return;
        o->state = QStringLiteral("failed");
        if (QListWidgetItem *it = findPending(id))
            item::setState(it, o->state, *names_);
        emit sendState(id, o->state, json);
    };
    if (!found->path.isEmpty() && !found->params.contains("file_id")) {
        // A file goes up first; the message that carries it follows.
        const quint64 rid = session_->call(
            "upload_file", QJsonObject{{"path", found->path}},
            [this, id, failed](int status, const QJsonObject &json) {
                auto o = outbox_.find(id);
                if (o == outbox_.end())
                    return;
                if (status != FEIGE_OK) {
                    status_->setText(tr("upload: %1").arg(Session::errorText(json)));
                    failed(json);
                    return;
                }
                status_->setText(tr("uploaded %1").arg(util::bytes(json.value("size").toDouble())));
                o->params.insert("file_id", json.value("file_id"));
                submit(id);
            });
        transfers_.insert(rid);
        return;
    }
    // Into the SDK's outbox (its file is written and synced inside the call: not on the GUI
    // thread); its `outbox` events tell the rest (onOutbox).
    session_->callOnSender("send_message", found->params,
                           [failed](int, const QJsonObject &json) { failed(json); });
}

void ChatView::onOutbox(const QJsonObject &event) {
    const QString id = event.value("client_msg_id").toString();
    auto o = outbox_.find(id);
    if (o == outbox_.end())
        return; // queued before a restart: history shows it once it is stored
    const QString state = event.value("state").toString();
    if (state == QLatin1String("sent")) {
        sent(id, event);
        return;
    }
    if (state != QLatin1String("sending") && state != QLatin1String("failed"))
        return;
    if (state == o->state)
        return;
    o->state = state;
    if (QListWidgetItem *it = findPending(id))
        item::setState(it, state, *names_);
    emit sendState(id, state, event);
}

void ChatView::sent(const QString &id, const QJsonObject &ack) {
    if (!outbox_.contains(id))
        return;
    Outgoing o = outbox_.take(id);
    QJsonObject m = o.message;
    for (const char *key : {"message_id", "conversation_id", "seq", "sent_at"})
        m.insert(QLatin1String(key), ack.value(QLatin1String(key)));
    const QString conv = ack.value("conversation_id").toString();
    if (conversationId_.isEmpty() && !peerUser_.isEmpty() &&
        o.message.value("to_user").toString() == peerUser_)
        conversationId_ = conv;
    if (QListWidgetItem *it = findPending(id)) {
        it->setData(item::Message, m);
        item::setState(it, QStringLiteral("sent"), *names_);
        seqs_.insert(m.value("seq").toString().toULongLong());
    }
    emit sendState(id, QStringLiteral("sent"), ack);
}

void ChatView::retry(const QString &id) {
    auto o = outbox_.find(id);
    if (o != outbox_.end() && o->state == QLatin1String("failed"))
        submit(id);
    retry_->setEnabled(false);
}

void ChatView::showOutgoing(const QString &id) {
    const Outgoing &o = outbox_[id];
    list_->addItem(item::make(o.message, true, o.state, *names_));
    list_->scrollToBottom();
}

QListWidgetItem *ChatView::findPending(const QString &id) const {
    // Sends are few and near the bottom: search from there.
    for (int row = list_->count() - 1; row >= 0; --row) {
        QListWidgetItem *it = list_->item(row);
        if (it->data(item::ClientMsgId).toString() == id &&
            it->data(item::Seq).toULongLong() == 0)
            return it;
    }
    return nullptr;
}

void ChatView::download(QListWidgetItem *it) {
    const QJsonObject file = it->data(item::Message).toJsonObject().value("file").toObject();
    const QString fileId = file.value("file_id").toString();
    if (fileId.isEmpty())
        return;
    const QString path = QFileDialog::getSaveFileName(
        this, tr("Save file"), QDir::home().filePath(file.value("name").toString()));
    if (path.isEmpty())
        return;
    downloadTo(fileId, path);
}

void ChatView::downloadTo(const QString &fileId, const QString &path) {
    status_->setText(tr("downloading to %1…").arg(path));
    const quint64 rid = session_->call(
        "download_file", QJsonObject{{"file_id", fileId}, {"path", path}},
        [this, fileId, path](int status, const QJsonObject &json) {
            status_->setText(status == FEIGE_OK ? tr("saved %1").arg(path)
                                                : tr("download: %1").arg(Session::errorText(json)));
            emit downloaded(fileId, path, status == FEIGE_OK);
        });
    transfers_.insert(rid);
}

void ChatView::onProgress(const QJsonObject &p) {
    const quint64 rid = p.value("request_id").toVariant().toULongLong();
    if (!transfers_.contains(rid))
        return;
    status_->setText(tr("transfer: %1 of %2")
                         .arg(util::bytes(p.value("done").toDouble()),
                              util::bytes(p.value("total").toDouble())));
}
