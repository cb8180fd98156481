#include "profilepage.h"

#include "session.h"

#include "feige.h"

#include <QDateTime>
#include <QFileDialog>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

ProfilePage::ProfilePage(Session *session, QWidget *parent) : QWidget(parent), session_(session) {
    who_ = new QLabel(this);
    who_->setWordWrap(true);
    nickname_ = new QLineEdit(this);
    signature_ = new QLineEdit(this);
    email_ = new QLineEdit(this);
    phone_ = new QLineEdit(this);
    auto *saveButton = new QPushButton(tr("Save profile"), this);
    auto *avatar = new QPushButton(tr("Set avatar…"), this);
    auto *logout = new QPushButton(tr("Log out"), this);
    status_ = new QLabel(this);
    status_->setWordWrap(true);

    auto *form = new QFormLayout;
    form->addRow(tr("Nickname"), nickname_);
    form->addRow(tr("Signature"), signature_);
    form->addRow(tr("E-mail"), email_);
    form->addRow(tr("Phone"), phone_);
    auto *layout = new QVBoxLayout(this);
    layout->addWidget(who_);
    layout->addLayout(form);
    layout->addWidget(saveButton);
    layout->addWidget(avatar);
    layout->addStretch(1);
    layout->addWidget(status_);
    layout->addWidget(logout);

    connect(saveButton, &QPushButton::clicked, this, &ProfilePage::save);
    connect(logout, &QPushButton::clicked, this, &ProfilePage::logoutRequested);
    connect(avatar, &QPushButton::clicked, this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Avatar image"), QString(),
                                                          tr("Images (*.png *.jpg *.jpeg *.gif)"));
        if (path.isEmpty())
            return;
        status_->setText(tr("Uploading the avatar…"));
        session_->call("set_avatar", QJsonObject{{"path", path}},
                       [this](int status, const QJsonObject &json) {
                           if (status != FEIGE_OK) {
                               status_->setText(Session::errorText(json));
                               return;
                           }
                           showProfile(json);
                           status_->setText(tr("Avatar set."));
                       });
    });
}

void ProfilePage::showProfile(const QJsonObject &p) {
    const qint64 created = qint64(p.value("created_at").toDouble());
    who_->setText(tr("@%1 (user #%2), member since %3")
                      .arg(p.value("username").toString(), p.value("user_id").toString(),
                           QDateTime::fromMSecsSinceEpoch(created).date().toString(Qt::ISODate)));
    nickname_->setText(p.value("nickname").toString());
    signature_->setText(p.value("signature").toString());
    email_->setText(p.value("email").toString());
    phone_->setText(p.value("phone").toString());
}

void ProfilePage::reload() {
    session_->call("whoami", {}, [this](int status, const QJsonObject &json) {
        if (status == FEIGE_OK)
            showProfile(json);
    });
}

void ProfilePage::save() {
    const QJsonObject params{{"nickname", nickname_->text()},
                             {"signature", signature_->text()},
                             {"email", email_->text()},
                             {"phone", phone_->text()}};
    session_->call("update_profile", params, [this](int status, const QJsonObject &json) {
        if (status != FEIGE_OK) {
            status_->setText(Session::errorText(json));
            return;
        }
        showProfile(json);
        status_->setText(tr("Saved."));
    });
}
