#include "groupspage.h"

#include "friendspage.h"
#include "session.h"
#include "util.h"

#include "feige.h"

#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QVBoxLayout>

namespace {
constexpr int kId = 0x0100 + 30; // group id (= its conversation id), or a friend's user id
constexpr int kName = 0x0100 + 31;
} // namespace

GroupsPage::GroupsPage(Session *session, const FriendsPage *friends, QWidget *parent)
    : QWidget(parent), session_(session), friends_(friends) {
    groups_ = new QListWidget(this);
    auto *leave = new QPushButton(tr("Leave group"), this);
    name_ = new QLineEdit(this);
    name_->setPlaceholderText(tr("New group's name"));
    members_ = new QListWidget(this);
    auto *create = new QPushButton(tr("Create group with the checked friends"), this);
    status_ = new QLabel(this);
    status_->setWordWrap(true);

    auto *layout = new QVBoxLayout(this);
    layout->addWidget(new QLabel(tr("Groups (double-click to chat)"), this));
    layout->addWidget(groups_, 2);
    layout->addWidget(leave);
    layout->addWidget(name_);
    layout->addWidget(members_, 1);
    layout->addWidget(create);
    layout->addWidget(status_);

    connect(groups_, &QListWidget::itemDoubleClicked, this, [this](QListWidgetItem *it) {
        emit openChat(it->data(kId).toString(), QString(), it->data(kName).toString());
    });
    connect(create, &QPushButton::clicked, this, &GroupsPage::create);
    connect(leave, &QPushButton::clicked, this, [this] {
        QListWidgetItem *it = groups_->currentItem();
        if (!it)
            return;
        session_->call("group_leave", QJsonObject{{"group_id", it->data(kId).toString()}},
                       [this](int status, const QJsonObject &json) {
                           status_->setText(status == FEIGE_OK ? tr("Left.") : Session::errorText(json));
                           reload();
                       });
    });
}

void GroupsPage::reload() {
    session_->call("groups", {}, [this](int status, const QJsonObject &json) {
        if (status != FEIGE_OK)
            return;
        groups_->clear();
        for (const QJsonValue &v : json.value("groups").toArray()) {
            const QJsonObject g = v.toObject();
            const QString name = g.value("name").toString();
            auto *it = new QListWidgetItem(tr("%1 — %2 members, %3")
                                               .arg(name)
                                               .arg(g.value("member_count").toInt())
                                               .arg(g.value("my_role").toString()));
            it->setData(kId, g.value("group_id").toString());
            it->setData(kName, name);
            groups_->addItem(it);
        }
        emit groupsChanged();
    });
}

void GroupsPage::refreshFriends() {
    members_->clear();
    for (const QJsonObject &f : friends_->friends()) {
        const QJsonObject user = f.value("user").toObject();
        auto *it = new QListWidgetItem(util::userName(user));
        it->setData(kId, user.value("user_id").toString());
        it->setFlags(it->flags() | Qt::ItemIsUserCheckable);
        it->setCheckState(Qt::Unchecked);
        members_->addItem(it);
    }
}

void GroupsPage::create() {
    const QString name = name_->text().trimmed();
    if (name.isEmpty()) {
        status_->setText(tr("Name the group first."));
        return;
    }
    QStringList members;
    for (int row = 0; row < members_->count(); ++row)
        if (members_->item(row)->checkState() == Qt::Checked)
            members.append(members_->item(row)->data(kId).toString());
    createGroup(name, members);
}

void GroupsPage::createGroup(const QString &name, const QStringList &memberIds) {
    session_->call("group_create",
                   QJsonObject{{"name", name}, {"members", QJsonArray::fromStringList(memberIds)}},
                   [this, name](int status, const QJsonObject &json) {
                       if (status != FEIGE_OK) {
                           status_->setText(Session::errorText(json));
                           emit createFailed(Session::errorText(json));
                           return;
                       }
                       name_->clear();
                       status_->setText(tr("Created %1.").arg(name));
                       reload();
                       emit openChat(json.value("conversation_id").toString(), QString(), name);
                       emit created(json.value("conversation_id").toString());
                   });
}

void GroupsPage::onPush(const QJsonObject &push) {
    const QString type = push.value("type").toString();
    if (type == QLatin1String("group_updated") || type == QLatin1String("group_removed"))
        reload();
}
