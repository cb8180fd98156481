// ProfilePage: this user's profile (whoami), edited with update_profile; the avatar set with
// set_avatar; and logging out.
#pragma once

#include <QJsonObject>
#include <QWidget>

class QLabel;
class QLineEdit;
class Session;

class ProfilePage : public QWidget {
    Q_OBJECT
public:
    explicit ProfilePage(Session *session, QWidget *parent = nullptr);

    /// Shows `profile` (as whoami); a profile_updated push passes here too.
    void showProfile(const QJsonObject &profile);
    void reload();

signals:
    void logoutRequested();

private:
    void save();

    Session *session_;
    QLabel *who_;
    QLineEdit *nickname_;
    QLineEdit *signature_;
    QLineEdit *email_;
    QLineEdit *phone_;
    QLabel *status_;
};
