#include "friendspage.h"

#include "session.h"
#include "util.h"

#include "feige.h"

#include <QHBoxLayout>
#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QVBoxLayout>

namespace {
constexpr int kId = 0x0100 + 20; // user id (results, friends) or request id (requests)
}

FriendsPage::FriendsPage(Session *session, QHash<QString, QString> *names, QWidget *parent)
    : QWidget(parent), session_(session), names_(names) {
    query_ = new QLineEdit(this);
    query_->setPlaceholderText(tr("Search users by name"));
    auto *find = new QPushButton(tr("Search"), this);
    results_ = new QListWidget(this);
    auto *add = new QPushButton(tr("Send friend request"), this);
    incoming_ = new QListWidget(this);
    auto *accept = new QPushButton(tr("Accept"), this);
    auto *reject = new QPushButton(tr("Reject"), this);
    outgoing_ = new QListWidget(this);
    friendList_ = new QListWidget(this);
    status_ = new QLabel(this);
    status_->setWordWrap(true);

    auto *layout = new QVBoxLayout(this);
    auto *searchRow = new QHBoxLayout;
    searchRow->addWidget(query_, 1);
    searchRow->addWidget(find);
    layout->addLayout(searchRow);
    layout->addWidget(results_, 1);
    layout->addWidget(add);
    layout->addWidget(new QLabel(tr("Requests received"), this));
    layout->addWidget(incoming_, 1);
    auto *answerRow = new QHBoxLayout;
    answerRow->addWidget(accept);
    answerRow->addWidget(reject);
    layout->addLayout(answerRow);
    layout->addWidget(new QLabel(tr("Requests sent"), this));
    layout->addWidget(outgoing_, 1);
    layout->addWidget(new QLabel(tr("Friends (double-click to chat)"), this));
    layout->addWidget(friendList_, 2);
    layout->addWidget(status_);

    connect(query_, &QLineEdit::returnPressed, this, &FriendsPage::search);
    connect(find, &QPushButton::clicked, this, &FriendsPage::search);
    connect(add, &QPushButton::clicked, this, [this] {
        QListWidgetItem *it = results_->currentItem();
        if (!it)
            return;
        session_->call("friend_request", QJsonObject{{"to_user", it->data(kId).toString()}},
                       [this](int status, const QJsonObject &json) {
                           if (status != FEIGE_OK) {
                               status_->setText(Session::errorText(json));
                               return;
                           }
                           status_->setText(json.value("became_friends").toBool()
                                                ? tr("You are friends now.")
                                                : tr("Request sent."));
                           reload();
                       });
    });
    connect(accept, &QPushButton::clicked, this, [this] { respond(true); });
    connect(reject, &QPushButton::clicked, this, [this] { respond(false); });
    connect(friendList_, &QListWidget::itemDoubleClicked, this, [this](QListWidgetItem *it) {
        const QJsonObject f = friends_.value(it->data(kId).toString());
        const QJsonObject user = f.value("user").toObject();
        const QString remark = f.value("remark").toString();
        emit openChat(f.value("conversation_id").toString(), user.value("user_id").toString(),
                      remark.isEmpty() ? util::userName(user) : remark);
    });
}

void FriendsPage::reload() {
    loadFriends();
    loadRequests();
}

void FriendsPage::loadFriends() {
    session_->call("friends", {}, [this](int status, const QJsonObject &json) {
        if (status != FEIGE_OK)
            return;
        friends_.clear();
        friendList_->clear();
        for (const QJsonValue &v : json.value("friends").toArray()) {
            const QJsonObject f = v.toObject();
            const QJsonObject user = f.value("user").toObject();
            const QString id = user.value("user_id").toString();
            friends_.insert(id, f);
            names_->insert(id, util::userName(user));
            const bool online = f.value("online").toBool();
            const QString remark = f.value("remark").toString();
            auto *it = new QListWidgetItem(
                (online ? QStringLiteral("● ") : QStringLiteral("○ ")) +
                (remark.isEmpty() ? util::userName(user) : remark + " (" + util::userName(user) + ")"));
            it->setData(kId, id);
            friendList_->addItem(it);
            emit presence(id, online);
        }
        emit friendsChanged();
    });
}

void FriendsPage::loadRequests() {
    session_->call("friend_requests", {}, [this](int status, const QJsonObject &json) {
        if (status != FEIGE_OK)
            return;
        incoming_->clear();
        outgoing_->clear();
        for (const QJsonValue &v : json.value("incoming").toArray()) {
            const QJsonObject r = v.toObject();
            QString text = util::userName(r.value("from").toObject());
            if (!r.value("message").toString().isEmpty())
                text += QStringLiteral(": ") + r.value("message").toString();
            auto *it = new QListWidgetItem(text);
            it->setData(kId, r.value("request_id").toString());
            incoming_->addItem(it);
        }
        for (const QJsonValue &v : json.value("outgoing").toArray()) {
            const QJsonObject r = v.toObject();
            outgoing_->addItem(tr("to %1 (waiting)").arg(util::userName(r.value("to").toObject())));
        }
    });
}

void FriendsPage::search() {
    const QString q = query_->text().trimmed();
    if (q.isEmpty())
        return;
    session_->call("search_users", QJsonObject{{"query", q}}, [this](int status, const QJsonObject &json) {
        results_->clear();
        if (status != FEIGE_OK) {
            status_->setText(Session::errorText(json));
            return;
        }
        for (const QJsonValue &v : json.value("users").toArray()) {
            const QJsonObject u = v.toObject();
            auto *it = new QListWidgetItem(
                QStringLiteral("%1 (@%2)").arg(util::userName(u), u.value("username").toString()));
            it->setData(kId, u.value("user_id").toString());
            results_->addItem(it);
        }
        status_->setText(tr("%n user(s) found", nullptr, results_->count()));
    });
}

void FriendsPage::respond(bool accept) {
    QListWidgetItem *it = incoming_->currentItem();
    if (!it)
        return;
    const QJsonObject params{{"request_id", it->data(kId).toString()}, {"accept", accept}};
    session_->call("friend_respond", params, [this](int status, const QJsonObject &json) {
        status_->setText(status == FEIGE_OK ? tr("Done.") : Session::errorText(json));
        reload();
    });
}

void FriendsPage::onPush(const QJsonObject &push) {
    const QString type = push.value("type").toString();
    if (type == QLatin1String("presence")) {
        const QString id = push.value("user_id").toString();
        const bool online = push.value("online").toBool();
        auto f = friends_.find(id);
        if (f != friends_.end())
            f->insert("online", online);
        emit presence(id, online);
        loadFriends();
    } else if (type == QLatin1String("friend_request") ||
               type == QLatin1String("friend_request_answered")) {
        loadRequests();
    } else if (type == QLatin1String("friend_response") || type == QLatin1String("friend_added") ||
               type == QLatin1String("friend_removed") || type == QLatin1String("friend_updated") ||
               type == QLatin1String("user_updated")) {
        reload();
    }
}
