package discord

import (
	"context"

	"github.com/bwmarrin/discordgo"
)

// Commands are the slash commands the bot answers.
func Commands() []*discordgo.ApplicationCommand {
	dm := true
	return []*discordgo.ApplicationCommand{
		{
			Name: commandAsk, Description: "Ask the assistant a question", DMPermission: &dm,
			Options: []*discordgo.ApplicationCommandOption{
				{Type: discordgo.ApplicationCommandOptionString, Name: optionQuestion, Description: "Your question", Required: true, MaxLength: 4000},
				{Type: discordgo.ApplicationCommandOptionString, Name: optionAssistant, Description: "Which assistant answers (see /assistant)", Autocomplete: true},
			},
		},
		{
			Name: commandAssistant, Description: "Choose the assistant that answers your /ask here, or list them", DMPermission: &dm,
			Options: []*discordgo.ApplicationCommandOption{
				{Type: discordgo.ApplicationCommandOptionString, Name: optionName, Description: "The assistant (leave out to list them)", Autocomplete: true},
			},
		},
	}
}

// Register creates or replaces the bot's slash commands: in one server
// (guildID, visible at once) or globally (guildID "", which Discord takes
// up to an hour to show everywhere). Commands the bot no longer has are
// removed (a bulk overwrite).
func (a *Adapter) Register(ctx context.Context, guildID string) ([]*discordgo.ApplicationCommand, error) {
	cmds, err := a.api.ApplicationCommandBulkOverwrite(a.cfg.ApplicationID, guildID, Commands(), discordgo.WithContext(ctx))
	if err != nil {
		return nil, restError("register commands", err)
	}
	return cmds, nil
}
